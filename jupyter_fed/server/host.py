"""The one Coordinator a Jupyter server hosts: booted on the server's loop, closed at shutdown.

This module knows nothing of tornado. Handlers ask the host for the coordinator with
``await host.get()``, which waits for the boot to finish, so a request that arrives while the
coordinator is still resuming sessions is answered late rather than wrongly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from jupyter_fed.coordinator import Coordinator
from jupyter_fed.errors import FedError

__all__ = ["CLOSED", "CoordinatorHost", "CoordinatorUnavailable"]

#: Put into every event queue when the host closes, so event streams end instead of hanging.
CLOSED: None = None


class CoordinatorUnavailable(FedError):
    """The server's coordinator is not running (its boot failed, or the server is stopping)."""

    code: ClassVar[str] = "coordinator_unavailable"
    status: ClassVar[int] = 503


class CoordinatorHost:
    """Owns the server's coordinator: boot, access, event subscriptions, shutdown.

    Parameters
    ----------
    state_dir
        Folder for the coordinator's database and model artefacts (created if missing).
    runners
        ``{"name", "url", "token"[, "fingerprint"]}`` connections to (re)make at boot. A runner that does not
        answer is logged and skipped, never fatal: one silo being down must not take the
        server's coordinator down with it.
    log
        Where boot problems are reported (the Jupyter server's log).
    """

    def __init__(self, state_dir: Path, runners: Iterable[dict[str, Any]] = (),
                 log: logging.Logger | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.runners = [dict(r) for r in runners]
        self.log = log or logging.getLogger("jupyter_fed.server")
        self._boot: asyncio.Task[Coordinator] | None = None
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._closing = False

    def boot(self, loop: asyncio.AbstractEventLoop) -> None:
        """Schedule the coordinator's start on ``loop`` (which need not be running yet)."""
        if self._boot is None:
            self._boot = loop.create_task(self._start(), name="jupyter-fed-coordinator-boot")
            self._boot.add_done_callback(self._report)

    def _report(self, task: asyncio.Task[Coordinator]) -> None:
        # Say it in the server log at once, not only to the first request that asks.
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.log.error("jupyter_fed: the coordinator failed to start: %s: %s "
                           "(check JupyterFedApp.state_dir)", type(exc).__name__, exc)

    async def _start(self) -> Coordinator:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        coordinator = Coordinator(self.state_dir)  # built on the running loop, as it expects
        results = await asyncio.gather(
            *(coordinator.add_runner(r["name"], r["url"], r["token"], r.get("fingerprint"))
              for r in self.runners),
            return_exceptions=True)
        for spec, res in zip(self.runners, results, strict=True):
            if isinstance(res, BaseException):
                self.log.warning("jupyter_fed: runner %r from JupyterFedApp.runners not connected: %s",
                                 spec["name"], getattr(res, "message", None) or type(res).__name__)
        resumed = await coordinator.start()
        if resumed:
            self.log.info("jupyter_fed: resumed session(s) %s", ", ".join(resumed))
        self.log.info("jupyter_fed: coordinator ready, state in %s", self.state_dir)
        return coordinator

    @property
    def ready(self) -> bool:
        """``True`` once the coordinator has booted successfully."""
        return (self._boot is not None and self._boot.done() and not self._boot.cancelled()
                and self._boot.exception() is None)

    async def get(self) -> Coordinator:
        """The coordinator, waiting for its boot; ``CoordinatorUnavailable`` if there is none."""
        if self._boot is None or self._closing:
            raise CoordinatorUnavailable("the jupyter-fed coordinator is not running",
                                         "the Jupyter server is stopping or was not started")
        try:
            return await asyncio.shield(self._boot)
        except FedError:
            raise
        except asyncio.CancelledError:
            if self._boot.cancelled():
                raise CoordinatorUnavailable("the jupyter-fed coordinator was stopped", "") from None
            raise
        except Exception as exc:
            raise CoordinatorUnavailable(
                f"the jupyter-fed coordinator failed to start: {type(exc).__name__}: {exc}",
                "check JupyterFedApp.state_dir and the Jupyter server log") from None

    async def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue of the coordinator's events; it receives ``CLOSED`` when the host closes."""
        coordinator = await self.get()
        queue: asyncio.Queue[dict[str, Any] | None] = coordinator.subscribe()  # type: ignore[assignment]
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._queues.discard(queue)
        if self.ready:
            assert self._boot is not None
            self._boot.result().unsubscribe(queue)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        """End event streams, then stop driving sessions (they resume at the next boot)."""
        if self._closing:
            return
        self._closing = True
        for queue in list(self._queues):
            queue.put_nowait(CLOSED)
        self._queues.clear()
        if self._boot is None:
            return
        if not self._boot.done():
            self._boot.cancel()
        await asyncio.gather(self._boot, return_exceptions=True)
        if self.ready:  # a failed or cancelled boot has nothing to close
            await self._boot.result().aclose()
