"""An in-process coordinator on its own event-loop thread, for scripts, tests and plain kernels.

The SDK calls it synchronously; the coroutines run on the coordinator's loop, so sessions keep
running between notebook cells, and a kernel's own event loop is never re-entered.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from jupyter_fed.coordinator import Coordinator

T = TypeVar("T")

_INSTANCES: dict[Path, EmbeddedBackend] = {}
_LOCK = threading.Lock()


def default_state_dir() -> Path:
    env = os.environ.get("JUPYTER_FED_STATE_DIR")
    if env:
        return Path(env)
    data = os.environ.get("JUPYTER_DATA_DIR") or Path.home() / ".local" / "share" / "jupyter"
    return Path(data) / "jupyter_fed"


class EmbeddedBackend:
    """Runs a ``Coordinator`` on a daemon thread and forwards calls to it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._loop = asyncio.new_event_loop()
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

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.coordinator, method)

        async def invoke() -> Any:
            result = fn(*args, **kwargs)
            return await result if asyncio.iscoroutine(result) else result

        return self.run(invoke())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.run(self.coordinator.aclose(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
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
