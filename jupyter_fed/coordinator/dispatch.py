"""One client's part of a round: submit the step, follow it, fetch and check its result.

Liveness is judged by the runner answering: a long-poll that comes back (even with no progress)
proves the runner is alive, so a slow step is never declared dead before the round's deadline,
while a runner that accepts connections and never answers is given up on after
``heartbeat_timeout``. Connection failures and runner restarts are retried with a new task id;
time-outs are not (a hung runner would only hang again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from jupyter_fed.coordinator.transfers import Transfers
from jupyter_fed.errors import FedError, RunnerTimeout, RunnerUnavailable, StepFailed, UpdateRejected
from jupyter_fed.wire import TaskSpec, TaskState, TaskStatus, decode
from jupyter_fed.wire.tensors import metadata

T = TypeVar("T")
RETRYABLE_CODES = {"runner_restarted"}
INLINE_RESULT_BYTES = 16 * 2**20
"""A step's arrays up to this size come back with its status, in the submission's answer."""


@dataclass
class ClientAnswer:
    client: dict[str, Any]
    task_id: str
    outputs: dict[str, Any]
    tensors: dict[str, np.ndarray]
    elapsed: float


@dataclass
class Liveness:
    """How long to wait for a runner, and how often to retry it."""

    deadline: float
    heartbeat_timeout: float
    max_retries: int

    def left(self) -> float:
        return self.deadline - time.monotonic()


def check_provenance(meta: dict[str, str], spec: TaskSpec) -> None:
    """Refuse a result that belongs to another task, round or session (late or replayed)."""
    expected = {"task_id": spec.task_id, "session_id": spec.session_id, "round": str(spec.round)}
    wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
    if wrong:
        raise UpdateRejected(f"result of task {spec.task_id} carries {wrong}, expected "
                             f"{ {k: expected[k] for k in wrong} }: a late, replayed or foreign "
                             "update, not aggregated", "")


class ClientStep:
    """Runs one step for one client with liveness checks, retries and result checks."""

    def __init__(self, runner: Any, client: dict[str, Any], spec: TaskSpec, payload: bytes,
                 liveness: Liveness, on_progress: Callable[[TaskStatus], None],
                 log: Callable[[str, str, str | None], None],
                 transfers: Transfers | None = None) -> None:
        self.runner, self.client, self.spec, self.payload = runner, client, spec, payload
        self.liveness, self.on_progress, self.log = liveness, on_progress, log
        self.transfers = transfers

    async def run(self) -> ClientAnswer:
        base = self.spec.task_id
        for attempt in range(self.liveness.max_retries + 1):
            spec = self.spec.model_copy(update={"task_id": base if not attempt else f"{base}.t{attempt}"})
            try:
                return await self._attempt(spec)
            except RunnerTimeout:
                raise
            except (RunnerUnavailable, StepFailed) as exc:
                retryable = isinstance(exc, RunnerUnavailable) or exc.code in RETRYABLE_CODES
                backoff = min(0.5 * 2**attempt, 8.0)
                if not retryable or attempt == self.liveness.max_retries or \
                        self.liveness.left() < backoff:
                    raise
                self.log("warning", f"{exc.message}; retrying in {backoff:g} s "
                         f"({attempt + 1}/{self.liveness.max_retries})", self.client["client_id"])
                await asyncio.sleep(backoff)
        raise AssertionError("unreachable")

    async def _bounded(self, call: Awaitable[T], extra: float = 0.0) -> T:
        left = self.liveness.left()
        if left <= 0:
            raise RunnerTimeout(f"runner {self.client['runner']!r} did not finish {self.spec.step} of "
                                f"round {self.spec.round} before the round timeout",
                                "raise round_timeout, or check the runner")
        limit = min(left, self.liveness.heartbeat_timeout + extra)
        try:
            return await asyncio.wait_for(call, limit)
        except TimeoutError:
            raise RunnerTimeout(f"runner {self.client['runner']!r} stopped answering (no reply "
                                f"within {limit:.3g} s)", "check that the runner is alive") from None

    async def _attempt(self, spec: TaskSpec) -> ClientAnswer:
        runner, hb = self.runner, self.liveness.heartbeat_timeout
        # a large model moves in slots of the coordinator's budget (coordinator/transfers.py)
        budget = self.transfers if self.transfers is not None and \
            self.transfers.bounded(len(self.payload)) else None
        try:
            if budget is not None:  # upload in a slot, then poll
                async with budget.slot(len(self.payload)):
                    status, data = await self._bounded(runner.submit_wait(spec, self.payload))
            else:  # the submission is the first long poll: most steps end within it
                wait = max(0.0, min(self.liveness.left(), hb / 2, 10.0))
                status, data = await self._bounded(runner.submit_wait(
                    spec, self.payload, wait=wait, timeout=wait + hb,
                    inline=INLINE_RESULT_BYTES), extra=wait)
            self.on_progress(status)
            while not status.state.terminal:
                wait = max(0.0, min(self.liveness.left(), hb / 2, 10.0))
                status = await self._bounded(runner.status(spec.task_id, wait=wait,
                                                           timeout=wait + hb), extra=wait)
                self.on_progress(status)
            if status.state is not TaskState.succeeded:
                err = status.error
                failure = StepFailed(f"{spec.step} on runner {self.client['runner']!r} "
                                     f"{status.state.value}: "
                                     f"{err.message if err else 'no reason given'}",
                                     err.hint if err else "")
                if err is not None and err.code in RETRYABLE_CODES:
                    failure.code = err.code  # type: ignore[misc]
                raise failure
            tensors: dict[str, np.ndarray] = {}
            if status.has_tensors:
                if data is None and budget is not None:  # not answered with the status
                    async with budget.slot(len(self.payload)):
                        data = await self._bounded(runner.result(spec.task_id))
                elif data is None:
                    data = await self._bounded(runner.result(spec.task_id))
                check_provenance(metadata(data), spec)
                tensors = decode(data)
            self.on_progress(status)
            return ClientAnswer(self.client, spec.task_id, status.outputs or {}, tensors,
                                status.elapsed or 0.0)
        except RunnerTimeout:
            await self._cancel(spec.task_id)
            raise
        except asyncio.CancelledError:
            # Session cancelled or coordinator stopping: free the runner's worker slot.
            await asyncio.shield(self._cancel(spec.task_id))
            raise

    async def _cancel(self, task_id: str) -> None:
        try:
            await asyncio.wait_for(self.runner.cancel(task_id), 3.0)
        except (FedError, TimeoutError, asyncio.CancelledError):
            pass
