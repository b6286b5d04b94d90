"""An in-process coordinator on its own event-loop thread, for scripts, tests and plain kernels.

The SDK calls it synchronously; the coroutines run on the coordinator's loop, so sessions keep
running between notebook cells, and a kernel's own event loop is never re-entered.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from jupyter_fed.coordinator import Coordinator

T = TypeVar("T")
log = logging.getLogger("jupyter_fed.client")

_INSTANCES: dict[Path, EmbeddedBackend] = {}
_LOCK = threading.Lock()


def default_state_dir() -> Path:
    env = os.environ.get("JUPYTER_FED_STATE_DIR")
    if env:
        return Path(env)
    data = os.environ.get("JUPYTER_DATA_DIR") or Path.home() / ".local" / "share" / "jupyter"
    return Path(data) / "jupyter_fed"


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed: a step's exchange with each runner (a TLS request and answer of
    tens of kilobytes) costs the coordinator's thread less on it, which counts at every step."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class EmbeddedBackend:
    """Runs a ``Coordinator`` on a daemon thread and forwards calls to it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="jupyter-fed-coordinator")
        self._thread.start()

        async def make() -> Coordinator:
            coordinator = Coordinator(state_dir)
            await coordinator.start()  # resume sessions a previous process left running
            return coordinator

        try:
            self.coordinator: Coordinator = self.run(make())
        except BaseException:  # e.g. the state folder is in use: leave no thread behind
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            raise
        self.closed = False

    @classmethod
    def shared(cls, state_dir: Path | None = None) -> EmbeddedBackend:
        """One coordinator per state folder per process: SQLite wants a single writer."""
        key = (state_dir or default_state_dir()).absolute()
        with _LOCK:
            inst = _INSTANCES.get(key)
            if inst is None or inst.closed:
                inst = _INSTANCES[key] = cls(key)
            return inst

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous coordinator method on its loop thread (it owns the state)."""
        async def invoke() -> T:
            return fn(*args, **kwargs)

        return self.run(invoke())

    # the Backend protocol (client/_backend.py) ----------------------------------------------
    def add_runner(self, name: str, url: str, token: str, fingerprint: str | None = None
                   ) -> dict[str, Any]:
        return self.run(self.coordinator.add_runner(name, url, token, fingerprint))

    def add_runners(self, runners: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.run(self.coordinator.add_runners(runners))

    def join_invitation(self, blob: str, password: str, name: str | None = None
                        ) -> dict[str, Any]:
        return self.run(self.coordinator.join_invitation(blob, password, name))

    def runner_admin(self, runner: str, method: str, path: str, body: Any = None,
                     params: dict[str, Any] | None = None) -> Any:
        return self.run(self.coordinator.runner_admin(runner, method, path, body, params))

    def remove_runner(self, name: str) -> None:
        self.run(self.coordinator.remove_runner(name))

    def runners(self) -> list[dict[str, Any]]:
        return self.run(self.coordinator.runners())

    def catalog(self) -> dict[str, Any]:
        return self.run(self.coordinator.catalog())

    def packages(self) -> list[dict[str, Any]]:
        return self._sync(self.coordinator.packages)

    def add_code(self, name: str, files: dict[str, str]) -> dict[str, Any]:
        return self._sync(self.coordinator.add_code, name, files)

    def create_session(self, **kwargs: Any) -> dict[str, Any]:
        return self._sync(self.coordinator.create_session, **kwargs)

    def sessions(self) -> list[dict[str, Any]]:
        return self._sync(self.coordinator.sessions)

    def session(self, sid: str) -> dict[str, Any]:
        return self._sync(self.coordinator.session, sid)

    def start_session(self, sid: str) -> dict[str, Any]:
        return self._sync(self.coordinator.start_session, sid)

    def cancel(self, sid: str) -> dict[str, Any]:
        return self.run(self.coordinator.cancel(sid))

    def resume(self, sid: str) -> dict[str, Any]:
        return self.run(self.coordinator.resume(sid))

    def join(self, sid: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.run(self.coordinator.join(sid, tasks))

    def wait(self, sid: str, timeout: float | None = None,
             after_round: int | None = None) -> dict[str, Any]:
        return self.run(self.coordinator.wait(sid, timeout, after_round))

    def metrics(self, sid: str) -> dict[str, Any]:
        return self._sync(self.coordinator.metrics, sid)

    def rounds(self, sid: str) -> list[dict[str, Any]]:
        return self._sync(self.coordinator.rounds, sid)

    def logs(self, sid: str, after: int = 0) -> list[dict[str, Any]]:
        return self._sync(self.coordinator.logs, sid, after)

    def artefact_bytes(self, sid: str) -> tuple[bytes, dict[str, Any]]:
        return self._sync(self.coordinator.artefact_bytes, sid)

    def simulate(self, **kwargs: Any) -> dict[str, Any]:
        from jupyter_fed.simulation import start_simulation

        return self.run(start_simulation(self.coordinator, **kwargs))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.run(self.coordinator.aclose(), timeout=30)
            try:  # its threads (steps' off-loop work) end with it
                self.run(self._loop.shutdown_default_executor(), timeout=10)
            except Exception:  # one still busy: it is a daemon thread, and the loop goes below
                log.warning("a coordinator thread was still busy when it closed")
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():  # its selector, wake-up pipe and signal fds
                self._loop.close()
            with _LOCK:
                if _INSTANCES.get(self.state_dir) is self:
                    del _INSTANCES[self.state_dir]


@atexit.register
def _close_all() -> None:
    for inst in list(_INSTANCES.values()):
        try:
            inst.close()
        except Exception:
            pass
