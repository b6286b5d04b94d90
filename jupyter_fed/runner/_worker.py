"""A worker process: runs the runner's package steps one at a time until the runner goes away.

Forked by ``workers.WorkerPool`` from the runner's fork server (which imported the ML stack once,
see ``_zygote.py``) with one end of a socket pair. It keeps decoded dataset columns between rounds
(``arrays.ArrayCache``) and reports progress and results as ``_ipc`` frames. The runner can kill it
at any moment — that is the point: a step over its time or memory limit is stopped and all its
memory returned to the system.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jupyter_fed.runner import _ipc

log = logging.getLogger("jupyter_fed.runner.worker")

PROGRESS_EVERY = 0.1
"""Seconds between two progress reports sent to the runner (the step may report more often)."""
TRIM_WHEN_IDLE = 0.5
"""Seconds without a new job after which freed memory is handed back to the system. Not after
every job: a full garbage collection with torch loaded takes ~100 ms, which back-to-back rounds
would pay each time."""
TRIM_AT_ONCE = 256 * 2**20
"""Bytes of growth over the warm worker's size after which memory is handed back at once."""


class Warmup:
    """Runs one tiny torch training step on a thread, beside the worker's first step.

    The fork server imported torch already; this initialises what a fork does not carry over
    (autograd's and the optimiser's first-use set-up), so the first round does not pay for it.
    A step that needs torch meanwhile simply runs alongside. ``growth`` is the memory the warm-up
    took, which the runner must not count against a step running at the same time.
    """

    def __init__(self, threads: int, enabled: bool) -> None:
        self.threads, self.enabled = threads, enabled
        self.done = threading.Event()
        self.growth = 0
        threading.Thread(target=self._run, name="fed-worker-warmup", daemon=True).start()

    def _run(self) -> None:
        before = _own_rss()
        try:
            if self.enabled:
                _warmup(self.threads)
        finally:
            self.growth = _own_rss() - before
            self.done.set()


def _warmup(threads: int) -> None:
    """Import torch and run one tiny training step, so the first round does not pay for it."""
    try:
        import torch

        torch.set_num_threads(threads)
        net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        torch.nn.functional.cross_entropy(net(torch.zeros(8, 4)), torch.zeros(8, dtype=torch.long)
                                          ).backward()
        opt.step()
    except ImportError:  # pragma: no cover - the runner still serves analytics packages
        pass


def _trim() -> None:
    """Give memory a finished step freed back to the system (glibc keeps it otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _own_rss() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0


class Worker:
    """The worker's state: its socket to the runner, its caches, the step being run."""

    def __init__(self, sock: socket.socket, config: dict[str, Any], warmup: Warmup) -> None:
        from jupyter_fed.runner.arrays import ArrayCache
        from jupyter_fed.runner.data import TableCache

        self.sock, self.config, self.warmup = sock, config, warmup
        self.tables = TableCache(max_tables=2)
        self.arrays = ArrayCache(int(config["array_cache_bytes"]))
        self._send_lock = threading.Lock()
        self._jobs: queue.Queue[tuple[dict[str, Any], bytes]] = queue.Queue()
        self._cancels: dict[str, threading.Event] = {}
        self.warm_rss = _own_rss()

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        with self._send_lock:
            _ipc.send(self.sock, header, payload)

    def serve(self) -> None:
        # Packages (built-in, plug-ins, JUPYTER_FED_PACKAGES) are imported before the first step.
        from jupyter_fed.packages import package_names

        package_names()
        gc.freeze()  # see _report_warm
        threading.Thread(target=self._listen, name="fed-worker-inbox", daemon=True).start()
        self.send({"op": "ready", "pid": os.getpid()})
        threading.Thread(target=self._report_warm, name="fed-worker-warm", daemon=True).start()
        dirty = False
        while True:
            try:
                header, payload = self._jobs.get(timeout=TRIM_WHEN_IDLE if dirty else None)
            except queue.Empty:
                _trim()
                dirty = False
                continue
            try:
                self.run(header, payload)
                if "custom" in header:  # a sandboxed worker runs one step; the runner ends it
                    os._exit(0)
            finally:
                self._cancels.pop(header["job"], None)
                dirty = True
                if _own_rss() - self.warm_rss > TRIM_AT_ONCE:
                    _trim()

    def _report_warm(self) -> None:
        self.warmup.done.wait()
        # Everything imported so far (torch, the packages) lives as long as the worker: out of
        # the collector's sight, a full collection (after a large step, when idle) takes
        # microseconds instead of ~0.1 s, and so do the automatic ones during steps.
        gc.freeze()
        self.warm_rss = _own_rss()
        self.send({"op": "warm", "growth": self.warmup.growth})

    def _listen(self) -> None:
        """Read the runner's frames: jobs are queued, cancels flag the running step at once."""
        try:
            while True:
                header, payload = _ipc.recv(self.sock)
                op = header.get("op")
                if op == "run":
                    self._cancels[header["job"]] = threading.Event()
                    self._jobs.put((header, payload))
                elif op == "cancel":
                    event = self._cancels.get(header.get("job", ""))
                    if event is not None:
                        event.set()
                elif op == "exit":
                    os._exit(0)
        except (EOFError, OSError, ValueError):
            os._exit(0)  # the runner is gone (or spoke nonsense): nobody is waiting for results

    def _open(self, d: dict[str, Any], scope: Any = None, memory_bytes: int | None = None) -> Any:
        """A dataset handle: a view's filtered rows, else the file through the array cache
        (which keeps a Dask-backed dataset's backend, so its partials run on the cluster).
        ``scope`` (cache folder, principal) is where ``handle.aligned()`` finds alignments.
        ``memory_bytes``: the step's memory limit; ``handle.batches`` holds rows in memory up
        to a quarter of it (the rest is for the model, the arrow table and copies), and streams
        a larger dataset."""
        from jupyter_fed.runner.arrays import CachedDataset
        from jupyter_fed.runner.storage import location
        from jupyter_fed.runner.views import ViewDataset
        from jupyter_fed.wire import DatasetInfo
        from jupyter_fed.wire.models import DatasetBackend

        info = DatasetInfo.model_validate(d["info"])
        info.backend = DatasetBackend.model_validate(d["backend"]) if d.get("backend") else None
        info.view, info.budget_group = d.get("view"), d.get("budget_group")
        # a file, or an object read with the runner's storage options for its prefix
        path = location(d["path"], self.config.get("storage_options") or {})
        if info.view:
            return ViewDataset(info, path, self.tables.get, scope)
        return CachedDataset(info, path, self.tables, self.arrays, scope,
                             memory_budget=None if memory_bytes is None else memory_bytes // 4,
                             shuffle_buffer_bytes=self.config.get("shuffle_buffer_bytes"))

    def _custom_step(self, box: dict[str, Any], job: str, step: str) -> Any:
        """A custom package's step function, after the audit hook is in place (the kernel's
        walls went up when this worker started)."""
        from jupyter_fed.packages.custom import CodeBundle, load_module
        from jupyter_fed.packages.registry import load_object
        from jupyter_fed.runner._sandbox import watch

        bundle = CodeBundle(box["name"], box["files"])
        if bundle.digest != box["digest"]:
            raise RuntimeError("the custom code does not match its approved hash")

        def report(message: str) -> None:
            self.send({"op": "violation", "job": job, "message": message[:500]})

        if any("torch" in text for text in bundle.files.values()):
            # torch loads its libraries with ctypes, which the hook refuses to custom code:
            # imported here, by the runner's own code (the fork server has it when warm).
            import contextlib

            with contextlib.suppress(ImportError):
                import torch.nn
                import torch.optim  # noqa: F401
        load_module(bundle)
        watch(box, report)
        return load_object(f"{bundle.module}.local:{step}")

    def run(self, header: dict[str, Any], payload: bytes) -> None:
        """Run one step and report its outcome; never raises."""
        from jupyter_fed.packages import get_package
        from jupyter_fed.packages.base import StepCancelled, StepContext
        from jupyter_fed.runner import secagg
        from jupyter_fed.runner.aligned import AlignmentScope
        from jupyter_fed.runner.executor import step_error
        from jupyter_fed.wire import TaskSpec, TaskState, decode, encode
        from jupyter_fed.wire import secagg as secagg_msg

        job, spec = header["job"], TaskSpec.model_validate(header["spec"])
        cancel = self._cancels.setdefault(job, threading.Event())
        last = [time.monotonic()]  # a step shorter than PROGRESS_EVERY reports none: its end says it

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY or fraction >= 1.0:
                last[0] = now
                self.send({"op": "progress", "job": job, "progress": fraction,
                           "message": message[:500]})

        started = time.perf_counter()
        reply: dict[str, Any] = {"op": "done", "job": job}
        try:
            if cancel.is_set():
                raise StepCancelled("the step was cancelled before it started", "")
            params = dict(spec.params)
            # Asked to mask: check the request and open the peers' shares before any row
            # is read; the result is masked below, before it is written anywhere.
            masking = secagg.Masking.begin(secagg.files_for(header), params.pop(
                secagg_msg.PARAM)) if secagg_msg.PARAM in params else None
            upcoming = params.pop(secagg_msg.NEXT, None)  # the next secure step's keys
            box = header.get("custom")
            step_fn = self._custom_step(box, job, spec.step) if box is not None else \
                get_package(spec.package).load_step(spec.step)
            arrays = decode(payload) if payload else {}
            scope = AlignmentScope(Path(header["cache_dir"]), header["principal"])
            datasets = {role: self._open(d, scope, header.get("memory_bytes"))
                        for role, d in header["datasets"].items()}
            ctx = StepContext(task_id=spec.task_id, round=spec.round, cancel_event=cancel,
                              on_progress=progress, policy=header["policy"],
                              cache_dir=Path(header["cache_dir"]),
                              principal=header["principal"], session_id=spec.session_id,
                              output_path=_output_resolver(header.get("data_roots") or [])
                              if box is None else None,
                              threads=int(self.config["torch_threads"]))
            torch = sys.modules.get("torch")
            if torch is not None:  # keep silos sharing a host from oversubscribing its cores
                torch.set_num_threads(int(self.config["torch_threads"]))
            result = step_fn(ctx, datasets, params, arrays)
            if masking is not None:
                result = masking.apply(result)
            outputs = dict(result.outputs)
            if masking is not None and upcoming is not None:
                outputs.update(secagg.next_keys(secagg.files_for(header), upcoming))
            outputs["num_examples"] = int(result.num_examples)
            json.dumps(outputs)  # a step may return only JSON-able outputs
            if result.tensors:
                # Provenance travels with the arrays: the coordinator checks it before aggregating.
                target = Path(header["result_path"])
                tmp = target.with_suffix(".tmp")
                tmp.write_bytes(encode(result.tensors, {"task_id": spec.task_id,
                                                        "session_id": spec.session_id,
                                                        "round": str(spec.round)}))
                tmp.replace(target)
            reply.update(state=TaskState.succeeded.value, outputs=outputs,
                         has_tensors=bool(result.tensors))
        except Exception as exc:  # every outcome is reported; a SystemExit ends the worker
            state, error = step_error(exc, spec)
            reply.update(state=state.value, error=error.to_body())
        reply["elapsed"] = time.perf_counter() - started
        self.send(reply)


def _output_resolver(roots: list[str]) -> Any:
    """``ctx.output_path``: a file to write, under the runner's data roots (see ``data``)."""
    from jupyter_fed.runner.data import resolve_output_path

    return lambda path: resolve_output_path(path, [Path(r) for r in roots])


def run_worker(sock: socket.socket, threads: int, warm: bool,
               box: dict[str, Any] | None = None) -> None:
    """A worker's life, in a process forked by the runner's fork server (see ``workers.py``).

    ``box``: the sandbox of the one custom step this worker is for; it is raised now, while the
    process has a single thread (see ``_sandbox``), and a worker that cannot raise it exits.
    """
    # Ctrl-C in a terminal reaches the whole process group; the runner decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if box is not None:
        from jupyter_fed.runner._sandbox import confine

        try:
            enforced = confine(box)
        except OSError as exc:
            logging.basicConfig(level=logging.WARNING)
            log.error("cannot sandbox custom code %s: %s", box.get("code_id"), exc)
            os._exit(3)
        if not enforced["landlock_abi"]:
            logging.basicConfig(level=logging.WARNING)
            log.warning("no Landlock on this kernel: custom code's file access is checked by "
                        "the audit hook only")
    warmup = Warmup(threads, warm)
    try:
        config, _ = _ipc.recv(sock)
    except (EOFError, OSError, ValueError):
        return
    logging.basicConfig(level=logging.WARNING, format=f"[worker {os.getpid()}] %(levelname)s "
                        "%(name)s: %(message)s")
    Worker(sock, config, warmup).serve()
