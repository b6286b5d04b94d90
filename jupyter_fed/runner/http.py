"""Connection-level limits uvicorn does not have: a header-read timeout and a connection cap.

uvicorn arms its keep-alive timer only after a response, so a connection that opens and then
sends nothing, or a request head a byte at a time, is held forever; thousands of them pin file
descriptors and memory. ``guarded_protocol`` subclasses uvicorn's HTTP protocol so that every
connection must finish each request head within ``header_timeout`` seconds of opening (or of its
previous response), and so that beyond ``max_connections`` the oldest connections still waiting
for a head are closed first — a legitimate client sends its head at once, an attacker's
half-open connections are the ones that wait.

Request *bodies* are timed by the gate (``gate.py``), which knows who is sending them. A TLS
connection reaches the protocol only after its handshake, so ``runner_loop`` gives the server's
event loop the same deadline for TLS handshakes and closing handshakes (the loop's defaults are
60 s and 30 s).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any


def guarded_protocol(base: type[asyncio.Protocol], header_timeout: float,
                     max_connections: int) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's ``base`` protocol (httptools or h11) with both limits.

    Parameters
    ----------
    base
        ``uvicorn.protocols.http.httptools_impl.HttpToolsProtocol`` or the h11 one.
    header_timeout
        Seconds a connection may take to deliver a complete request head.
    max_connections
        Open connections before the oldest head-less ones are closed.
    """
    waiting: OrderedDict[int, Any] = OrderedDict()  # head not complete yet, oldest first

    class GuardedProtocol(base):  # type: ignore[valid-type,misc]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_head()
            excess = len(self.connections) - max_connections
            for key in list(waiting)[:max(excess, 0)]:
                if key != id(self):
                    waiting[key]._close_headless()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            super().data_received(data)
            if self.cycle is not cycle:  # a request head just completed
                self._head_done()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not getattr(self, "pipeline", None):
                self._await_head()  # the next request's head is on the same clock

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_done()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            self._head_done()
            self._head_timer = self.loop.call_later(header_timeout, self._close_headless)
            waiting[id(self)] = self

        def _head_done(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            waiting.pop(id(self), None)

        def _close_headless(self) -> None:
            self._head_done()
            if not self.transport.is_closing():
                self.transport.close()

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol


_handshake_timeout = 10.0


def runner_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's loop factory for the runner (``Config(loop="jupyter_fed.runner.http:runner_loop")``).

    uvloop when installed (a stall of ~40 ms per response without it), with TLS handshakes
    limited to the header timeout set by :func:`protocol_class`.
    """
    try:
        import uvloop

        base: type[asyncio.AbstractEventLoop] = uvloop.Loop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux
        base = asyncio.SelectorEventLoop

    class RunnerLoop(base):  # type: ignore[valid-type,misc]
        async def create_server(self, *args: Any, **kw: Any) -> Any:
            if kw.get("ssl") is not None:  # a peer that stalls the TLS opening or closing
                kw.setdefault("ssl_handshake_timeout", _handshake_timeout)
                kw.setdefault("ssl_shutdown_timeout", _handshake_timeout)
            return await super().create_server(*args, **kw)

    return RunnerLoop()


def protocol_class(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """The guarded httptools protocol (uvicorn[standard]), or h11's when httptools is missing.

    Also sets the TLS handshake deadline of :func:`runner_loop` to ``header_timeout``.
    """
    global _handshake_timeout
    _handshake_timeout = header_timeout
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # pragma: no cover - httptools ships with uvicorn[standard]
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    return guarded_protocol(base, header_timeout, max_connections)
