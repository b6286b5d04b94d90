"""Runs package steps in a worker pool so the HTTP loop never blocks on training.

Each task is recorded in SQLite on arrival and on completion; its arrays are written to
``results/<task_id>.safetensors``. A task id seen before returns the stored task instead of running
again, which makes the coordinator's retries safe.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jupyter_fed.errors import ConflictError, FedError, NotFoundError, PermissionDenied, StepFailed
from jupyter_fed.packages import get_package
from jupyter_fed.packages.base import StepCancelled, StepContext, StepResult
from jupyter_fed.runner.accounts import Principal
from jupyter_fed.runner.budget import charge_step
from jupyter_fed.runner.data import TableCache
from jupyter_fed.runner.policy import DatasetPolicy, Ledger
from jupyter_fed.runner.registry import load_dataset
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore, now
from jupyter_fed.runner.views import open_dataset
from jupyter_fed.wire import DatasetInfo, ErrorBody, TaskSpec, TaskState, TaskStatus, encode

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


@dataclass
class _Live:
    status: TaskStatus
    cancel: threading.Event = field(default_factory=threading.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Executor:
    """Accepts tasks, runs them on worker threads, and answers status and result requests."""

    def __init__(self, settings: RunnerSettings, store: RunnerStore, ledger: Ledger) -> None:
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self.cache = TableCache()
        self._pool = ThreadPoolExecutor(settings.max_workers, thread_name_prefix="fed-step")
        self._live: dict[str, _Live] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        settings.results_dir.mkdir(parents=True, exist_ok=True)
        # A task that was running when the runner stopped will never finish: say so.
        for row in store.unfinished_tasks():
            st = TaskStatus.model_validate(row["status"])
            st.state, st.finished_at = TaskState.failed, now()
            st.error = ErrorBody(code="runner_restarted", message="the runner restarted while this "
                                 "step ran", hint="the coordinator retries the round")
            store.update_task(row["id"], st.model_dump(mode="json"))

    def shutdown(self) -> None:
        for live in self._live.values():
            live.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------------------------------
    def submit(self, spec: TaskSpec, tensors: bytes | None, principal: Principal) -> TaskStatus:
        """Check policy and budget, record the task, and queue it; idempotent on the task id."""
        self._loop = asyncio.get_running_loop()
        digest = spec_digest(spec, tensors)
        existing = self.store.get_task(spec.task_id)
        if existing is not None:
            if existing["principal"] != principal.name:
                raise ConflictError(f"task id {spec.task_id!r} is taken", "choose a new task id")
            if existing["digest"] != digest:
                raise ConflictError(f"task id {spec.task_id!r} was already used for another request",
                                    "choose a new task id for a new step")
            return self.status(spec.task_id)
        package = get_package(spec.package)
        step_fn = package.load_step(spec.step)
        handles = {role: self._dataset(name) for role, name in spec.datasets.items()}
        policies = {role: DatasetPolicy.model_validate(self.store.get_policy(name) or {})
                    for role, name in spec.datasets.items()}
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
        arrays = {} if not tensors else _decode(tensors)
        # Privacy budget: (epsilon, delta) and evaluations, debited before any row is read,
        # refused as a whole if anything would overdraw; each role's policy carries its grant.
        ctx_policy = charge_step(self.ledger, spec, package, handles, policies, principal.name,
                                 tensors)
        status = TaskStatus(task_id=spec.task_id, state=TaskState.queued, submitted_at=now())
        self.store.put_task(spec.task_id, digest, principal.name, spec.model_dump(mode="json"),
                            status.model_dump(mode="json"))
        live = self._live[spec.task_id] = _Live(status)
        self._pool.submit(self._run, spec, step_fn, handles, arrays, live, ctx_policy, principal.name)
        return status

    def check_owner(self, task_id: str, principal: Principal) -> None:
        """Only the principal who submitted a task (or an admin) may see or stop it."""
        row = self.store.get_task(task_id)
        if row is None or (row["principal"] != principal.name and not principal.is_admin):
            raise NotFoundError(f"no task {task_id!r} on this runner", "")

    def _dataset(self, name: str) -> tuple[DatasetInfo, Path]:
        return load_dataset(self.settings, self.store, name)

    def _run(self, spec: TaskSpec, step_fn: Any, handles: dict[str, tuple[DatasetInfo, Path]],
             arrays: dict[str, np.ndarray], live: _Live, policy: dict[str, Any],
             principal: str = "") -> None:
        st = live.status
        if live.cancel.is_set():
            self._finish(spec.task_id, live, TaskState.cancelled, error=StepCancelled("cancelled"))
            return
        st.state, st.started_at, st.heartbeat_at = TaskState.running, now(), now()
        ctx = StepContext(task_id=spec.task_id, round=spec.round, cancel_event=live.cancel,
                          on_progress=lambda p, m: self._progress(live, p, m), policy=policy,
                          cache_dir=self.settings.home / "cache", principal=principal)
        torch = sys.modules.get("torch")
        if torch is not None:  # keep silos sharing a host from oversubscribing its cores
            torch.set_num_threads(self.settings.torch_threads)
        started = time.perf_counter()
        try:
            datasets = {role: open_dataset(info, path, self.cache)
                        for role, (info, path) in handles.items()}
            result: StepResult = step_fn(ctx, datasets, spec.params, arrays)
            elapsed = time.perf_counter() - started
            path = None
            if result.tensors:
                path = self.settings.results_dir / f"{spec.task_id}.safetensors"
                # Provenance travels with the arrays: the coordinator checks it before aggregating.
                path.write_bytes(encode(result.tensors, {"task_id": spec.task_id,
                                                         "session_id": spec.session_id,
                                                         "round": str(spec.round)}))
            outputs = dict(result.outputs)
            outputs["num_examples"] = int(result.num_examples)
            json.dumps(outputs)  # a step may return only JSON-able outputs
            st.outputs, st.has_tensors, st.elapsed, st.progress = outputs, bool(path), elapsed, 1.0
            self._finish(spec.task_id, live, TaskState.succeeded, result_path=path)
        except StepCancelled as exc:
            self._finish(spec.task_id, live, TaskState.cancelled, error=exc)
        except FedError as exc:
            self._finish(spec.task_id, live, TaskState.failed, error=exc)
        except Exception as exc:  # a package bug must not kill the worker or hide the reason
            log.exception("step %s of %s failed", spec.step, spec.package)
            self._finish(spec.task_id, live, TaskState.failed,
                         error=StepFailed(f"{spec.package}.{spec.step} failed: {summarise(exc)}",
                                          "the custodian can read the full error in the "
                                          "runner's log"))

    def _progress(self, live: _Live, fraction: float, message: str) -> None:
        live.status.progress, live.status.heartbeat_at = fraction, now()
        live.status.message = message

    def _finish(self, task_id: str, live: _Live, state: TaskState, *, error: FedError | None = None,
                result_path: Path | None = None) -> None:
        st = live.status
        st.state, st.finished_at, st.heartbeat_at = state, now(), now()
        if error is not None:
            st.error = ErrorBody(**error.to_body())
        self.store.update_task(task_id, st.model_dump(mode="json"),
                               str(result_path) if result_path else None)
        self._live.pop(task_id, None)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(live.done.set)

    # ---------------------------------------------------------------------------------------
    def status(self, task_id: str) -> TaskStatus:
        live = self._live.get(task_id)
        if live is not None:
            return live.status.model_copy()
        row = self.store.get_task(task_id)
        if row is None:
            raise NotFoundError(f"no task {task_id!r} on this runner", "")
        return TaskStatus.model_validate(row["status"])

    async def wait(self, task_id: str, timeout: float) -> TaskStatus:
        """Long-poll: return as soon as the task ends, or after ``timeout`` seconds with progress."""
        live = self._live.get(task_id)
        if live is not None and timeout > 0:
            try:
                await asyncio.wait_for(live.done.wait(), timeout)
            except TimeoutError:
                pass
        return self.status(task_id)

    def result(self, task_id: str) -> bytes:
        row = self.store.get_task(task_id)
        if row is None:
            raise NotFoundError(f"no task {task_id!r} on this runner", "")
        st = TaskStatus.model_validate(row["status"])
        if st.state is not TaskState.succeeded:
            raise ConflictError(f"task {task_id!r} is {st.state.value}, it has no result",
                                "wait until the task succeeded")
        if not row["result_path"]:
            return encode({})
        return Path(row["result_path"]).read_bytes()

    def cancel(self, task_id: str) -> TaskStatus:
        live = self._live.get(task_id)
        if live is not None:
            live.cancel.set()
        return self.status(task_id)


def _decode(data: bytes) -> dict[str, np.ndarray]:
    from jupyter_fed.wire import decode

    return decode(data)
