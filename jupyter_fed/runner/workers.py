"""The runner's worker processes: started once, reused, watched, and killed when a step overruns.

Steps used to run on threads of the runner's own process, where a runaway step could neither be
stopped nor give its memory back. Each step now runs in a persistent worker process
(``_worker.py``). Workers are forked from a fork server that imports numpy, pyarrow, the packages
and torch once (``_zygote.py``) while the runner already serves HTTP, so a worker — the first, one
started on demand, or one replacing a killed worker — is warm within tens of milliseconds.
``warm_workers`` start with the runner; more start on demand up to ``max_workers`` and stay. A watch loop
checks every busy worker's wall time and resident memory; one over its step's limit is killed
(its memory returns to the system at once), its step fails with ``step_limit_exceeded``, and a
new worker takes its place when one is needed.

Workers keep decoded dataset columns between rounds, so a step is sent preferably to a worker
that read the same dataset last (affinity), where its arrays are already in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from jupyter_fed.errors import FedError, StepFailed, StepLimitExceeded
from jupyter_fed.runner import _ipc
from jupyter_fed.runner._sandbox import SandboxViolation
from jupyter_fed.runner.settings import RunnerSettings

log = logging.getLogger("jupyter_fed.runner")

WATCH_EVERY = 0.05
"""Seconds between two checks of the busy workers' time and memory."""
MiB = 2**20


@dataclass(frozen=True)
class StepLimits:
    seconds: float
    memory_bytes: int


@dataclass
class Job:
    """One queued or running step, as the pool sees it."""

    key: str
    """Runner-wide task key (``principal/task_id``)."""
    principal: str
    header: dict[str, Any]
    """The ``run`` frame for the worker (spec, datasets, policy, result path)."""
    payload: bytes
    limits: StepLimits
    affinity: tuple[str, ...] = ()
    """Dataset files the step reads: a worker that read them last has their arrays cached."""
    dedicated: bool = False
    """Custom code: runs alone in a worker forked for it, sandboxed (``_sandbox``), then ended."""


class PoolEvents(Protocol):
    """What the pool tells its owner (the executor); all called on the event loop."""

    def on_idle(self) -> None: ...

    def on_started(self, job: Job) -> None: ...

    def on_progress(self, job: Job, fraction: float, message: str) -> None: ...

    def on_done(self, job: Job, report: dict[str, Any]) -> None: ...

    def on_lost(self, job: Job, error: FedError) -> None: ...


@dataclass
class Worker:
    number: int
    proc: Any
    """A ``multiprocessing`` process (``pid``, ``kill()``, ``join()``, ``exitcode``)."""
    writer: asyncio.StreamWriter | None = None
    ready: bool = False
    warm: bool = False
    """torch imported: until then the worker's memory grows by the import, not by its step."""
    job: Job | None = None
    job_started: float = 0.0
    baseline_rss: int = 0
    kill_reason: FedError | None = None
    cancel_deadline: float | None = None
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    reserved: Job | None = None
    """The one job of a dedicated (sandboxed) worker; it takes no other."""

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        assert self.writer is not None
        # A large model goes out as it is, after the frame's head, without being copied.
        self.writer.writelines([_ipc.head(header, len(payload)), payload])

    def rss(self) -> int:
        return _rss(self.proc.pid) if self.proc.pid is not None else 0


def start_fork_server(warmup: bool) -> Any:
    """Launch the fork server now (it imports the ML stack, see ``_zygote.py``); returns the
    ``multiprocessing`` context workers are made with. The runner calls it first thing, so the
    imports overlap with its own start."""
    import multiprocessing
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    preload = ["jupyter_fed.runner._zygote"]
    if warmup:  # torch._dynamo: the first optimiser imports it (~1.5 s)
        preload += ["torch", "torch.optim", "torch._dynamo"]
    context.set_forkserver_preload(preload)
    forkserver.ensure_running()
    return context


async def _in_thread(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` on a daemon thread: unlike the loop's default executor, a call still blocked
    when the runner stops (a fork server still importing torch) does not delay its exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            (future.set_result if ok else future.set_exception)(value)

    def run() -> None:
        try:
            ok, value = True, fn(*args)
        except BaseException as exc:  # handed to the awaiting task
            ok, value = False, exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=run, name="fed-worker-start", daemon=True).start()
    return await future


def _rss(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (Linux /proc); 0 where it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class WorkerPool:
    """Starts, feeds, watches and replaces worker processes (see the module doc).

    Parameters
    ----------
    settings
        ``max_workers``, ``warm_workers``, ``torch_threads``, ``warmup``, ``array_cache_mb``.
    events
        The owner, told when a worker becomes idle and when a job starts, progresses or ends.
    """

    def __init__(self, settings: RunnerSettings, events: PoolEvents) -> None:
        self.settings, self.events = settings, events
        self.workers: list[Worker] = []
        self._mp: Any = None
        self._numbers = iter(range(1, sys.maxsize))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the warm workers and the watch loop; returns at once (workers warm up alone)."""
        for _ in range(min(self.settings.warm_workers, self.settings.max_workers)):
            self.spawn()
        self._spawn_task(self._watch())

    def _context(self) -> Any:
        if self._mp is None:
            self._mp = start_fork_server(self.settings.warmup)
        return self._mp

    def spawn(self, job: Job | None = None) -> None:
        """Start a worker; given ``job`` (custom code), one that confines itself to that job's
        sandbox before anything else and runs only it."""
        from jupyter_fed.runner._worker import run_worker

        parent, child = socket.socketpair()
        box = job.header["custom"] if job is not None else None
        proc = self._context().Process(
            target=run_worker, name="jupyter-fed-worker",
            args=(child, self.settings.torch_threads, self.settings.warmup and box is None, box))
        worker = Worker(next(self._numbers), proc, reserved=job)
        self.workers.append(worker)
        self._spawn_task(self._serve(worker, parent, child))

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def shutdown(self) -> None:
        """Stop every worker now: they hold nothing a restart needs."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for w in self.workers:
            if w.proc.pid is not None:
                with contextlib.suppress(OSError):
                    w.proc.kill()  # SIGKILL: dead at once; nobody needs to wait for the reaping
        if self._mp is not None:  # the fork server would otherwise spend a second unloading torch
            from multiprocessing import forkserver

            pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    @property
    def size(self) -> int:
        return len(self.workers)

    def idle(self) -> list[Worker]:
        return [w for w in self.workers if w.ready and w.job is None and w.kill_reason is None
                and w.reserved is None]

    @property
    def warm(self) -> bool:
        """A worker has started and finished its warm-up: a step would start at once, without
        paying for torch's first use (what ``/v1/health`` reports as ``ready``). A runner that
        starts no worker ahead (``warm_workers = 0``) has nothing to wait for."""
        return self.settings.warm_workers == 0 or any(
            w.ready and w.warm and w.reserved is None and w.kill_reason is None
            for w in self.workers)

    @property
    def starting(self) -> int:
        return sum(1 for w in self.workers if not w.ready and w.reserved is None)

    # -- one worker ----------------------------------------------------------------------------
    async def _serve(self, worker: Worker, sock: socket.socket, child: socket.socket) -> None:
        """Start one worker, talk to it until it exits, then account for its job and replace it."""
        try:
            # start() waits for the fork server, which imports torch before its first fork: off
            # the loop, so the runner answers HTTP meanwhile.
            await _in_thread(self._start, worker)
            child.close()
            reader, worker.writer = await asyncio.open_unix_connection(sock=sock)
            worker.send({"op": "config", "torch_threads": self.settings.torch_threads,
                         "warmup": self.settings.warmup,
                         "array_cache_bytes": self.settings.array_cache_mb * MiB,
                         "shuffle_buffer_bytes": self.settings.shuffle_buffer_mb * MiB,
                         "storage_options": self.settings.storage_options})
            while True:
                header, _ = await _ipc.read(reader)
                self._handle(worker, header)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one worker's trouble end the pool's bookkeeping
            log.exception("worker %d failed", worker.number)
            self.kill(worker, StepFailed("the runner lost the worker running this step", ""))
        finally:
            child.close()
            await self._exited(worker)

    def _handle(self, worker: Worker, header: dict[str, Any]) -> None:
        op, job = header.get("op"), worker.job
        if op == "ready":
            worker.ready = True
            if worker.reserved is not None:
                self.run(worker.reserved, worker)
            else:
                self.events.on_idle()
        elif op == "warm":
            worker.warm = True
            worker.baseline_rss += int(header.get("growth", 0)) if job is not None else 0
        elif job is None or header.get("job") != job.key or \
                isinstance(worker.kill_reason, SandboxViolation):
            return  # a late report about a job the runner already gave up on
        elif op == "violation" and worker.reserved is not None:
            log.warning("custom step %s stopped: %s", job.key, header.get("message"))
            self.kill(worker, SandboxViolation(str(header.get("message", ""))[:500],
                                               "custom code may read only its dataset and "
                                               "compute: no network, other files or processes"))
        elif op == "progress":
            self.events.on_progress(job, float(header.get("progress", 0.0)),
                                    str(header.get("message", "")))
        elif op == "done":
            worker.job, worker.cancel_deadline = None, None
            if worker.reserved is not None:  # a sandboxed worker runs one step, then ends
                worker.reserved = None
                self.kill(worker, StepFailed("the sandboxed worker ended", ""))
            self.events.on_done(job, header)
            self.events.on_idle()

    def _start(self, worker: Worker) -> None:
        worker.proc.start()
        if self._closing:  # the runner stopped while this worker was being forked
            worker.proc.kill()

    async def _exited(self, worker: Worker) -> None:
        if worker.proc.pid is not None:
            with contextlib.suppress(OSError):
                worker.proc.kill()
            await _in_thread(worker.proc.join, 5.0)
        if worker in self.workers:
            self.workers.remove(worker)
        if worker.writer is not None:
            worker.writer.close()
        if self._closing:
            return
        job = worker.job
        if job is None and worker.reserved is not None:  # it could not confine itself
            job, worker.reserved = worker.reserved, None
            worker.kill_reason = worker.kill_reason or StepFailed(
                "the sandboxed worker for this custom step did not start (it could not "
                "confine itself)", "see the runner's log: custom code needs unprivileged user "
                "namespaces on the runner's machine")
        if job is not None:
            worker.job = None
            self.events.on_lost(job, worker.kill_reason or StepFailed(
                f"the worker running this step stopped unexpectedly (exit code "
                f"{worker.proc.exitcode})", "see the runner's log; the coordinator may retry"))
        if not worker.ready and job is None:  # the fork server is failing: do not spin
            log.error("a worker process did not start (exit code %s); retrying in 1 s",
                      worker.proc.exitcode)
            await asyncio.sleep(1.0)
        if self.size < self.settings.warm_workers:
            self.spawn()
        self.events.on_idle()

    # -- jobs ----------------------------------------------------------------------------------
    def run(self, job: Job, worker: Worker) -> None:
        """Hand ``job`` to an idle ``worker``."""
        worker.job, worker.job_started = job, time.monotonic()
        worker.baseline_rss = worker.rss()
        worker.recent.extend(job.affinity)
        self.events.on_started(job)
        try:
            worker.send({**job.header, "op": "run", "job": job.key}, job.payload)
        except (ConnectionError, RuntimeError):  # it died just now: _exited reports the job lost
            self.kill(worker, StepFailed("the worker for this step stopped before it began",
                                         "the coordinator may retry"))

    def choose(self, job: Job) -> Worker | None:
        """The idle worker that read ``job``'s datasets most recently, else the first idle one."""
        idle = self.idle()
        if not idle:
            return None

        def score(w: Worker) -> int:
            return max((i + 1 for i, key in enumerate(w.recent) if key in job.affinity), default=0)

        return max(idle, key=score)

    def cancel(self, key: str) -> bool:
        """Ask the worker running ``key`` to stop; it is killed if it has not after the grace."""
        for w in self.workers:
            if w.job is not None and w.job.key == key:
                if w.cancel_deadline is None:
                    w.cancel_deadline = time.monotonic() + self.settings.cancel_grace
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        w.send({"op": "cancel", "job": key})
                return True
        return False

    def kill(self, worker: Worker, reason: FedError) -> None:
        if worker.kill_reason is None and worker.proc.pid is not None:
            worker.kill_reason = reason
            with contextlib.suppress(OSError):
                worker.proc.kill()

    async def _watch(self) -> None:
        """Kill workers whose step is over its time or memory limit, or ignores a cancel."""
        while True:
            await asyncio.sleep(WATCH_EVERY)
            try:
                self._check_limits()
            except Exception:  # the watch must go on: it is what enforces the limits
                log.exception("checking the workers' limits failed")

    def _check_limits(self) -> None:
        now = time.monotonic()
        for w in list(self.workers):
            job = w.job
            if job is None or w.kill_reason is not None:
                continue
            if w.cancel_deadline is not None and now > w.cancel_deadline:
                self.kill(w, _cancelled())
            elif now - w.job_started > job.limits.seconds:
                self.kill(w, StepLimitExceeded(
                    f"the step ran longer than the {job.limits.seconds:g} s a step may take "
                    "on this runner, and was stopped", "use fewer epochs or rows per step, "
                    "or ask the custodian for a longer step_timeout"))
            elif w.warm and (grown := w.rss() - w.baseline_rss) > job.limits.memory_bytes:
                self.kill(w, StepLimitExceeded(
                    f"the step used more than the {job.limits.memory_bytes // MiB} MiB of "
                    f"memory a step may use on this runner ({grown // MiB} MiB), and was "
                    "stopped", "use a smaller model, batch or dataset, or ask the custodian "
                    "for a larger step_memory_mb"))


def _cancelled() -> FedError:
    from jupyter_fed.packages.base import StepCancelled

    return StepCancelled("the step was cancelled (its worker was stopped: it did not stop by "
                         "itself)", "")


__all__ = ["Job", "PoolEvents", "StepLimits", "Worker", "WorkerPool"]
