"""A simulated runner: the coordinator's ``RunnerClient`` seam, answered without a network.

The session engine dispatches a step to ``ctx.runner(name)`` and follows it with ``submit_wait``,
``status``, ``result`` and ``cancel``; this class answers those calls for every simulated client
of one simulation. Before a step runs it does what a runner's executor does — the dataset's
policy allows the package, the partition has the minimum rows, the step's privacy cost is
charged to a :class:`~jupyter_fed.runner.policy.Ledger` (the runner's own arithmetic, on a
ledger of the simulation's, in an in-memory SQLite database) — then hands the step to the engine's host
holding that partition. Everything after (provenance, validation, retries, aggregation) is the
real engine's.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_fed._sqlite import MEMORY
from jupyter_fed.errors import FedError, NotFoundError, PermissionDenied
from jupyter_fed.packages import get_package
from jupyter_fed.runner.budget import charge_step
from jupyter_fed.runner.policy import DatasetPolicy, Ledger
from jupyter_fed.runner.store import RunnerStore, now
from jupyter_fed.simulation.engines import Engine, Report
from jupyter_fed.wire import DatasetInfo, ErrorBody, TaskSpec, TaskState, TaskStatus
from jupyter_fed.wire import secagg as secagg_msg

__all__ = ["VirtualRunner"]


@dataclass
class _Task:
    status: TaskStatus
    done: asyncio.Future[bytes | None]
    data: bytes | None = None
    runs: list[asyncio.Task[None]] = field(default_factory=list)


class VirtualRunner:
    """Every simulated client of one simulation, as one runner the engine can call.

    Parameters
    ----------
    name
        The runner's name in the session (``sim-…``).
    infos
        Catalog entry of every simulated dataset (partitions, and the shared test set).
    hosts
        Dataset name → the engine host that holds it.
    engine
        Where steps run.
    policy
        The policy every simulated dataset has (as a custodian would set it).
    principal
        Whose budget the ledger debits.
    """

    def __init__(self, name: str, infos: dict[str, DatasetInfo], hosts: dict[str, int],
                 engine: Engine, policy: DatasetPolicy,
                 principal: str = "simulation") -> None:
        self.name, self.infos, self.hosts, self.engine = name, infos, hosts, engine
        self.policy, self.principal = policy, principal
        # The runner's ledger schema and arithmetic, in memory: a simulation's ledger lives as long
        # as it does, and a hundred clients' charges a round then cost no file writes.
        self.store = RunnerStore(MEMORY)
        self.ledger = Ledger(self.store)
        self._tasks: dict[str, _Task] = {}
        self._seq = itertools.count()

    # what the coordinator's connections ask of a runner -----------------------------------------
    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "name": self.name, "version": "simulation", "latency_ms": 0.0}

    async def datasets(self) -> list[DatasetInfo]:
        return list(self.infos.values())

    async def aclose(self) -> None:
        self.store.close()

    # the task protocol (RunnerClient's) --------------------------------------------------------
    async def submit_wait(self, spec: TaskSpec, tensors: bytes | None, wait: float = 0.0,
                          timeout: float | None = None, inline: int = 0
                          ) -> tuple[TaskStatus, bytes | None]:
        task = self._tasks.get(spec.task_id)
        if task is None:
            try:
                task = self._submit(spec, tensors or b"")
            except FedError as exc:  # refused as a runner refuses: with its name in the message
                exc.message = f"runner {self.name!r}: {exc.message}"
                raise
        status = await self.status(spec.task_id, wait)
        return status, task.data if status.state is TaskState.succeeded else None

    async def status(self, task_id: str, wait: float = 0.0, timeout: float | None = None
                     ) -> TaskStatus:
        task = self._task(task_id)
        if wait > 0 and not task.done.done():
            await asyncio.wait([task.done], timeout=wait)
        return task.status.model_copy()

    async def result(self, task_id: str) -> bytes:
        from jupyter_fed.wire import encode

        task = self._task(task_id)
        return task.data if task.data is not None else encode({})

    async def cancel(self, task_id: str) -> TaskStatus:
        task = self._task(task_id)
        if not task.done.done():
            for run in task.runs:
                run.cancel()
            self._end(task, TaskState.cancelled, error=ErrorBody(
                code="cancelled", message="the step was cancelled", hint=""))
        return task.status.model_copy()

    async def admin(self, method: str, path: str, body: Any = None,
                    params: dict[str, Any] | None = None) -> Any:
        if method == "GET" and path == "/v1/budget":
            return self.spending()
        raise NotFoundError(f"a simulated runner has no {method} {path}",
                            "simulations answer budget questions only (simulation.budget())")

    # -----------------------------------------------------------------------------------------
    def spending(self) -> list[dict[str, Any]]:
        """The simulated ledger: epsilon and delta spent per simulated dataset."""
        return [{**row, "simulated": True} for row in self.ledger.spending(self.principal)]

    def _task(self, task_id: str) -> _Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFoundError(f"runner {self.name!r}: no task {task_id!r}", "")
        return task

    def _submit(self, spec: TaskSpec, payload: bytes) -> _Task:
        """The executor's checks, in its order, then the step on the partition's host."""
        if spec.step in secagg_msg.BUILTIN_STEPS or secagg_msg.PARAM in spec.params:
            raise PermissionDenied("secure aggregation is not simulated",
                                   "simulate without secure aggregation; real runners add it")
        package = get_package(spec.package)
        if spec.step not in package.steps:
            package.load_step(spec.step)  # raises naming the package's steps
        handles: dict[str, tuple[DatasetInfo, Path]] = {}
        for role, name in spec.datasets.items():
            info = self.infos.get(name)
            if info is None:
                raise NotFoundError(f"no dataset {name!r} on this runner", "")
            if not self.policy.allows(package.name):
                raise PermissionDenied(f"dataset {name!r} does not allow package "
                                       f"{package.name!r}", "change the simulation's policy")
            minimum = self.policy.minimum_rows(info.num_columns)
            if info.num_rows < minimum:
                raise PermissionDenied(
                    f"dataset {name!r} has {info.num_rows} rows, fewer than the {minimum} a "
                    "runner requires for any contribution",
                    "use fewer clients or a less skewed partition")
            handles[role] = (info, Path(f"/simulated/{name}"))
        policies = dict.fromkeys(handles, self.policy)
        ctx_policy = charge_step(self.ledger, spec, package, handles, policies, self.principal,
                                 payload, task=spec.task_id)
        loop = asyncio.get_running_loop()
        task = _Task(TaskStatus(task_id=spec.task_id, state=TaskState.queued,
                                submitted_at=now()), loop.create_future())
        self._tasks[spec.task_id] = task
        host = next((self.hosts[n] for n in spec.datasets.values() if n in self.hosts), 0)
        pending = self.engine.submit(host, spec.model_dump_json(), payload, ctx_policy)
        task.status.state, task.status.started_at = TaskState.running, now()
        run = loop.create_task(self._run(task, pending))
        task.runs.append(run)
        return task

    async def _run(self, task: _Task, pending: asyncio.Future[Report]) -> None:
        try:
            report, data = await pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the host itself failed (a dead actor, a lost worker)
            self._end(task, TaskState.failed, error=ErrorBody(
                code="runner_restarted", message=f"the simulation's {self.engine.name} host "
                f"failed: {type(exc).__name__}", hint="the engine retries the step"))
            return
        state = TaskState(report["state"])
        task.status.elapsed = report.get("elapsed")
        if state is TaskState.succeeded:
            task.status.outputs = report.get("outputs") or {}
            task.status.has_tensors = bool(report.get("has_tensors"))
            task.status.progress = 1.0
            task.data = data
        error = report.get("error")
        self._end(task, state, error=ErrorBody(**error) if error else None)

    @staticmethod
    def _end(task: _Task, state: TaskState, *, error: ErrorBody | None = None) -> None:
        st = task.status
        st.state, st.finished_at, st.heartbeat_at = state, now(), now()
        if error is not None:
            st.error = error
        if not task.done.done():
            task.done.set_result(task.data)
