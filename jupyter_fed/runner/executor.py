"""Accepts steps, queues them fairly, runs them in worker processes, answers status and results.

Each task is recorded in SQLite on arrival and on completion; its arrays are written by the worker
to ``results/<digest>.safetensors``. A task id seen before from the same principal returns the
stored task instead of running again, which makes the coordinator's retries safe. Task ids are
per principal (stored as ``principal/task_id``): another principal's ids are invisible, so using
one neither fails nor reveals that it exists.

Steps run in worker processes (``workers.py``) that can be stopped at the step's time and memory
limits; the queue between them is fair across principals (``queue.py``). The package-facing API
(``StepContext``, ``StepResult``, ``DatasetHandle``) is unchanged: the worker builds them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_fed.errors import (
    ConfigError,
    ConflictError,
    FedError,
    NotFoundError,
    PermissionDenied,
    StepFailed,
    StepLimitExceeded,
)
from jupyter_fed.packages import get_package
from jupyter_fed.packages.base import StepCancelled
from jupyter_fed.runner.accounts import Principal
from jupyter_fed.runner.budget import charge_step
from jupyter_fed.runner.custom_steps import CustomCode
from jupyter_fed.runner.grants import Grants
from jupyter_fed.runner.policy import DatasetPolicy, Ledger
from jupyter_fed.runner.queue import FairQueue
from jupyter_fed.runner.registry import load_dataset
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.storage import DataPath
from jupyter_fed.runner.store import RunnerStore, now
from jupyter_fed.runner.workers import Job, MiB, StepLimits, WorkerPool
from jupyter_fed.wire import DatasetInfo, ErrorBody, TaskSpec, TaskState, TaskStatus, encode
from jupyter_fed.wire import secagg as secagg_msg

log = logging.getLogger("jupyter_fed.runner")


def spec_digest(spec: TaskSpec, tensors: bytes | None) -> str:
    h = hashlib.sha256(spec.model_dump_json().encode())
    h.update(tensors or b"")
    return h.hexdigest()


def summarise(exc: BaseException) -> str:
    """The exception's type and where it was raised — never its text, which may quote a cell
    value (``could not convert string to float: 'SSN-…'``); the runner's own log keeps it."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno} in {tb[-1].name})" if tb else ""
    return f"{type(exc).__name__}{where}"


def step_error(exc: BaseException, spec: TaskSpec) -> tuple[TaskState, FedError]:
    """How an exception raised by a step is reported: the task's end state and its error.

    Runs in the worker process (and in the runner for secure aggregation's built-in steps). The
    one place that decides what of a step's exception leaves the runner.
    """
    if isinstance(exc, StepCancelled):
        return TaskState.cancelled, exc
    if isinstance(exc, FedError):
        return TaskState.failed, exc
    # a package bug must not kill the worker or hide the reason
    log.error("step %s of %s failed", spec.step, spec.package, exc_info=exc)
    return TaskState.failed, StepFailed(f"{spec.package}.{spec.step} failed: {summarise(exc)}",
                                        "see the runner's log for the full traceback")


def task_key(principal: str, task_id: str) -> str:
    """Where a principal's task id is stored: ids are per principal, never shared."""
    return f"{principal}/{task_id}"


def _dataset_header(info: DatasetInfo, path: DataPath) -> dict[str, Any]:
    """What a worker needs to open a dataset, runner-side fields included (the catalog's JSON
    leaves out the backend, the view and the budget group; a worker must not). An object's URI
    travels without its storage options: the worker has the runner's own (see ``workers.py``)."""
    return {"info": info.model_dump(mode="json"), "path": str(path),
            "backend": info.backend.model_dump(mode="json") if info.backend else None,
            "view": info.view, "budget_group": info.budget_group}


@dataclass
class _Live:
    status: TaskStatus
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Executor:
    """Accepts tasks, queues them fairly, runs them in worker processes, answers about them."""

    def __init__(self, settings: RunnerSettings, store: RunnerStore, ledger: Ledger) -> None:
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self.grants = Grants(store)
        self.queue: FairQueue[Job] = FairQueue(
            settings.max_steps_per_principal or max(1, settings.max_workers - 1),
            settings.max_queued_per_principal)
        self.pool = WorkerPool(settings, self)
        self.custom = CustomCode(settings, store)
        self._builtins: set[asyncio.Task[None]] = set()
        self._live: dict[str, _Live] = {}
        self._stopping = asyncio.Event()
        settings.results_dir.mkdir(parents=True, exist_ok=True)
        store.namespace_task_ids()
        # A task that was running when the runner stopped will never finish: say so.
        for row in store.unfinished_tasks():
            st = TaskStatus.model_validate(row["status"])
            st.state, st.finished_at = TaskState.failed, now()
            st.error = ErrorBody(code="runner_restarted", message="the runner restarted while this "
                                 "step ran", hint="the coordinator retries the round")
            store.update_task(row["id"], st.model_dump(mode="json"))

    def start(self) -> None:
        """Start the worker processes (call on the server's event loop; returns at once)."""
        self.pool.start()

    def shutdown(self) -> None:
        self.stopping()
        self.pool.shutdown()

    def stopping(self) -> None:
        """The server is stopping: answer every long poll now, with the task as it is.

        Cut off instead, a long poll would be answered 500 by the server, which a coordinator
        must take for a failed step; an answer saying "running", then a refused connection, is
        what a restart looks like, and the coordinator retries it.
        """
        self._stopping.set()

    # ---------------------------------------------------------------------------------------
    def submit(self, spec: TaskSpec, tensors: bytes | None, principal: Principal, *,
               digest: str | None = None) -> TaskStatus:
        """Check policy, limits and budget, record the task, and queue it; idempotent on the id.

        ``digest``: ``check_payload(spec, tensors)``, computed beforehand off the event loop.
        """
        key = task_key(principal.name, spec.task_id)
        digest = digest or check_payload(spec, tensors)
        existing = self.store.get_task(key)
        if existing is not None:
            if existing["digest"] != digest:
                raise ConflictError(f"task id {spec.task_id!r} was already used for another request",
                                    "choose a new task id for a new step")
            return self.status(key)
        self.queue.check_room(principal.name)
        custom = self.custom.resolve(spec, principal)  # None unless custom:<name>@<digest>
        package = custom.package if custom is not None else get_package(spec.package)
        builtin = spec.step in secagg_msg.BUILTIN_STEPS
        if not builtin and spec.step not in package.steps:  # refused here, not in the worker
            package.load_step(spec.step)
        # Secure aggregation's messages are checked before anything is queued; the package's
        # own hooks below see its params without them.
        params = secagg_params(spec)
        spec_seen = spec.model_copy(update={"params": params}) if params is not spec.params \
            else spec
        # A dataset that is not the principal's to use is answered as one that does not exist
        # (before it is even looked up); a grant narrows the policy — packages, an epsilon
        # budget of its own — for this principal.
        policies = {role: self.grants.check_step(
                        principal, name, self.settings.name,
                        DatasetPolicy.model_validate(self.store.get_policy(name) or {}),
                        package.name, None if builtin else spec.step)
                    for role, name in spec.datasets.items()}
        handles = {role: self._dataset(name) for role, name in spec.datasets.items()}
        for role, (info, _path) in handles.items():
            policy = policies[role]
            if not policy.allows(package.name):
                raise PermissionDenied(f"dataset {info.name!r} does not allow package "
                                       f"{package.name!r}", "ask the custodian to allow it")
            minimum = policy.minimum_rows(info.num_columns)
            if info.num_rows < minimum:
                raise PermissionDenied(
                    f"dataset {info.name!r} has {info.num_rows} rows, fewer than the "
                    f"{minimum} this runner requires for any contribution", "use a larger dataset")
        if custom is not None:
            self.custom.check(custom, handles, policies)
        limits = self._limits(policies.values())
        needed = 0 if builtin else package.resource_estimate_of(
            spec.step, params, {role: info.num_rows for role, (info, _) in handles.items()})
        if needed > limits.memory_bytes:
            raise StepLimitExceeded(
                f"{package.name}.{spec.step} would need about {needed / MiB:,.0f} MiB of memory, "
                f"more than the {limits.memory_bytes // MiB:,} MiB a step may use on this runner",
                "use a smaller model (fewer or narrower layers), or ask the custodian for a "
                "larger step_memory_mb")
        # Privacy budget: (epsilon, delta) and evaluations, debited before any row is read,
        # refused as a whole if anything would overdraw; each role's policy carries its grant.
        # The ledger is keyed by the principal's own task key: another user's id buys nothing.
        if builtin:  # reads no row and releases nothing about one: nothing to charge
            ctx_policy = {role: policies[role].model_dump() for role in handles}
        else:
            ctx_policy = charge_step(self.ledger, spec_seen, package, handles, policies,
                                     principal.name, tensors, task=key)
        status = TaskStatus(task_id=spec.task_id, state=TaskState.queued, submitted_at=now())
        dumped = spec.model_dump(mode="json")
        self.store.put_task(key, digest, principal.name, dumped, status.model_dump(mode="json"))
        self._live[key] = _Live(status)
        header = {"spec": dumped, "principal": principal.name,
                  "policy": ctx_policy,
                  "datasets": {role: _dataset_header(info, path)
                               for role, (info, path) in handles.items()},
                  "cache_dir": str(self.settings.home / "cache"),
                  "data_roots": [str(r) for r in self.settings.data_roots],
                  "secagg_dir": str(self.settings.home / "secagg"),
                  "secagg_ttl": self.settings.secagg_ttl,
                  "result_path": str(self._result_path(key)),
                  "memory_bytes": limits.memory_bytes}
        if custom is not None and not builtin:  # runs alone in a sandboxed one-shot worker
            header["custom"] = self.custom.header(custom, key, handles, header)
        if builtin:
            # Secure aggregation's own steps read no row and take milliseconds: they run here,
            # on a thread, so they never queue behind a package step in the worker (the next
            # round's keys and shares are agreed while this round's step trains).
            task = asyncio.get_running_loop().create_task(self._builtin(key, spec, header))
            self._builtins.add(task)
            task.add_done_callback(self._builtins.discard)
            return status
        self.queue.push(Job(key, principal.name, header, tensors or b"", limits,
                            tuple(sorted({str(path) for _, path in handles.values()})),
                            dedicated="custom" in header))
        self._pump()
        return status

    async def _builtin(self, key: str, spec: TaskSpec, header: dict[str, Any]) -> None:
        from jupyter_fed.runner import secagg

        started = time.perf_counter()
        live = self._live.get(key)
        if live is not None:
            live.status.state, live.status.started_at = TaskState.running, now()
        report: dict[str, Any]
        try:
            result = await asyncio.to_thread(secagg.run_builtin, spec.step, dict(spec.params),
                                             header)
            report = {"state": TaskState.succeeded.value,
                      "outputs": {**result.outputs, "num_examples": int(result.num_examples)}}
        except Exception as exc:  # reported exactly as a worker reports a step's failure
            state, error = step_error(exc, spec)
            report = {"state": state.value, "error": error.to_body()}
        report["elapsed"] = time.perf_counter() - started
        self._complete(key, report)

    def _limits(self, policies: Any) -> StepLimits:
        """The step's limits: the strictest any of its datasets' policies sets, else settings."""
        seconds = [p.max_step_seconds for p in policies if p.max_step_seconds is not None]
        memory = [p.max_step_memory_mb for p in policies if p.max_step_memory_mb is not None]
        return StepLimits(min(seconds) if seconds else self.settings.step_timeout,
                          (min(memory) if memory else self.settings.step_memory_mb) * MiB)

    def _result_path(self, key: str) -> Path:
        return self.settings.results_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.safetensors"

    def resolve(self, task_id: str, principal: Principal) -> str:
        """The stored key of ``task_id`` as seen by ``principal`` (an admin sees everyone's).

        An id another principal used is answered exactly like one nobody used.
        """
        key = task_key(principal.name, task_id)
        if self.store.get_task(key) is not None:
            return key
        if principal.is_admin:
            found = self.store.find_task(task_id)
            if found is not None:
                return found
        raise NotFoundError(f"no task {task_id!r} on this runner", "")

    def _dataset(self, name: str) -> tuple[DatasetInfo, DataPath]:
        return load_dataset(self.settings, self.store, name)

    # -- scheduling (on the event loop) -------------------------------------------------------
    def _pump(self) -> None:
        """Start waiting jobs on idle workers; start another worker if jobs wait for one."""
        while self.queue.runnable() and self.pool.idle():
            job = self.queue.pop()
            worker = self.pool.choose(job) if job is not None else None
            if job is not None and job.dedicated:  # custom code: a fresh sandboxed worker
                self.pool.spawn(job)
                continue
            if job is None or worker is None:  # pragma: no cover - both checked just above
                break
            self.pool.run(job, worker)
        if self.queue.runnable() and self.pool.size < self.settings.max_workers and \
                self.pool.starting == 0:
            self.pool.spawn()

    def on_idle(self) -> None:
        self._pump()

    def on_started(self, job: Job) -> None:
        live = self._live.get(job.key)
        if live is not None:
            live.status.state, live.status.started_at = TaskState.running, now()
            live.status.heartbeat_at = now()

    def on_progress(self, job: Job, fraction: float, message: str) -> None:
        live = self._live.get(job.key)
        if live is not None:
            live.status.progress, live.status.heartbeat_at = fraction, now()
            live.status.message = message

    def on_done(self, job: Job, report: dict[str, Any]) -> None:
        self.queue.finished(job.principal)
        if job.dedicated:
            self.custom.finish(job.header, job.principal, report)
        self._complete(job.key, report)

    def _complete(self, key: str, report: dict[str, Any]) -> None:
        """A step's end as its worker (or, for a built-in, this process) reported it."""
        live = self._live.get(key)
        if live is None:
            return
        st, state = live.status, TaskState(report["state"])
        st.elapsed = report.get("elapsed")
        error = report.get("error")
        if state is TaskState.succeeded:
            st.outputs, st.has_tensors, st.progress = report.get("outputs") or {}, \
                bool(report.get("has_tensors")), 1.0
        self._finish(key, live, state, error=ErrorBody(**error) if error else None,
                     result_path=self._result_path(key) if st.has_tensors else None)

    def on_lost(self, job: Job, error: FedError) -> None:
        self.queue.finished(job.principal)
        if job.dedicated:
            self.custom.finish(job.header, job.principal, {"state": "failed",
                                                           "error": error.to_body()})
        live = self._live.get(job.key)
        if live is not None:
            state = TaskState.cancelled if isinstance(error, StepCancelled) else TaskState.failed
            self._finish(job.key, live, state, error=ErrorBody(**error.to_body()))

    def _finish(self, key: str, live: _Live, state: TaskState, *, error: ErrorBody | None = None,
                result_path: Path | None = None) -> None:
        st = live.status
        st.state, st.finished_at, st.heartbeat_at = state, now(), now()
        if error is not None:
            st.error = error
        self.store.update_task(key, st.model_dump(mode="json"),
                               str(result_path) if result_path else None)
        self._live.pop(key, None)
        live.done.set()

    # ---------------------------------------------------------------------------------------
    def status(self, key: str) -> TaskStatus:
        live = self._live.get(key)
        if live is not None:
            return live.status.model_copy()
        row = self.store.get_task(key)
        if row is None:
            raise NotFoundError(f"no task {key.partition('/')[2]!r} on this runner", "")
        return TaskStatus.model_validate(row["status"])

    async def wait(self, key: str, timeout: float) -> TaskStatus:
        """Long-poll: return as soon as the task ends, or after ``timeout`` seconds with progress."""
        live = self._live.get(key)
        if live is not None and timeout > 0 and not self._stopping.is_set():
            done, stop = (asyncio.ensure_future(e.wait()) for e in (live.done, self._stopping))
            _, pending = await asyncio.wait((done, stop), timeout=timeout,
                                            return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        return self.status(key)

    def small_result(self, key: str, limit: int) -> bytes | None:
        """A finished task's arrays if they are at most ``limit`` bytes, else ``None``; for a
        caller that has its status (succeeded, with arrays) in hand: the file is where
        ``_finish`` recorded it, and a worker writes it before it reports the step's end."""
        if key in self._live:
            return None
        path = self._result_path(key)
        try:
            if path.stat().st_size > limit:
                return None
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def result(self, key: str) -> bytes:
        row = self.store.get_task(key)
        if row is None:
            raise NotFoundError(f"no task {key.partition('/')[2]!r} on this runner", "")
        st = TaskStatus.model_validate(row["status"])
        if st.state is not TaskState.succeeded:
            raise ConflictError(f"task {st.task_id!r} is {st.state.value}, it has no result",
                                "wait until the task succeeded")
        if not row["result_path"]:
            return encode({})
        return Path(row["result_path"]).read_bytes()

    def cancel(self, key: str) -> TaskStatus:
        live = self._live.get(key)
        if live is not None:
            job = self.queue.remove(key)
            if job is not None:  # still waiting: it never reaches a worker
                self._finish(key, live, TaskState.cancelled,
                             error=ErrorBody(code="cancelled", message="cancelled before it started"))
            else:
                self.pool.cancel(key)
        return self.status(key)


def secagg_params(spec: TaskSpec) -> dict[str, Any]:
    """``spec.params`` without secure aggregation's part, after checking that part's shape
    (``ConfigError`` naming the field); the same dict when there is none."""
    from pydantic import ValidationError

    from jupyter_fed.packages import field_errors

    raw, upcoming = spec.params.get(secagg_msg.PARAM), spec.params.get(secagg_msg.NEXT)
    if raw is None and upcoming is None and spec.step not in secagg_msg.BUILTIN_STEPS:
        return spec.params
    model = {secagg_msg.KEYS: secagg_msg.KeysParams, secagg_msg.SHARES: secagg_msg.SharesParams,
             secagg_msg.UNMASK: secagg_msg.UnmaskParams}.get(spec.step, secagg_msg.MaskParams)
    # What may ride along (wire.secagg): the next step's keys on a masked step, its shares on
    # an unmask step; nothing on the others.
    riding = {secagg_msg.UNMASK: secagg_msg.SharesParams, secagg_msg.KEYS: None,
              secagg_msg.SHARES: None}.get(spec.step, secagg_msg.KeysParams)
    checks = [(secagg_msg.PARAM, model, raw)]
    if upcoming is not None:
        if riding is None or raw is None:
            raise ConfigError(f"invalid secure-aggregation request: params.{secagg_msg.NEXT} "
                              "rides only on a masked step or an unmask step", "")
        checks.append((secagg_msg.NEXT, riding, upcoming))
    for key, kind, value in checks:
        try:
            kind.model_validate(value)
        except ValidationError as exc:
            details = field_errors(exc, f"params.{key}")
            raise ConfigError("invalid secure-aggregation request: " + "; ".join(
                f"{d['field']}: {d['error']}" for d in details), "", details=details) from None
    return {k: v for k, v in spec.params.items() if k not in (secagg_msg.PARAM, secagg_msg.NEXT)}


def check_payload(spec: TaskSpec, tensors: bytes | None) -> str:
    """Refuse a malformed safetensors payload (the worker decodes it again); returns the task's
    digest. Both take time for a large model: the runner calls this on a thread."""
    if tensors:
        from jupyter_fed.wire import decode

        decode(tensors)
    return spec_digest(spec, tensors)
