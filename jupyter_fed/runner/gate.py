"""The runner's front door: who is calling, and how much they may send, decided before any body.

A pure ASGI layer around the FastAPI app. For every request it looks the route up in the scope
table, checks the bearer token and its scope from the headers alone, and only then lets the body
in — counted against a limit that depends on who is sending it (a few KiB for requests without a
token, ``max_upload_bytes`` for valid tokens), within a read timeout, and with at most
``max_concurrent_uploads`` large bodies in flight. A refused request is answered at once with
``Connection: close``, so an attacker's body is never read, buffered or parsed.

It also writes the audit log (every authenticated request, and every 401/403), since it is the
one place that sees both the principal and the final status.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupyter_fed.errors import FedError, PayloadTooLarge, RunnerUnavailable
from jupyter_fed.runner.accounts import Accounts, Principal
from jupyter_fed.runner.audit import AuditLog

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LARGE_BODY = 1 << 20
"""Bodies above this many bytes (or of unknown length) take one of the upload slots."""


class RequestTimeout(FedError):
    """A request body did not arrive in time."""

    code = "request_timeout"
    status = 408


class RunnerBusy(RunnerUnavailable):
    """Every upload slot stayed taken for longer than a body may take to arrive."""

    code = "runner_busy"
    status = 503


@dataclass(frozen=True)
class GateLimits:
    """What the gate enforces; built from ``RunnerSettings``."""

    max_body: int
    """Largest body a valid token may send."""
    max_anonymous_body: int
    """Largest body a request without a (needed) token may send."""
    max_concurrent_uploads: int
    body_timeout: float
    """Longest pause between two pieces of one body, in seconds."""
    body_min_rate: float = 16 * 1024
    """Slowest average rate (bytes/s) a body may arrive at once ``body_timeout`` has passed, so
    a body trickled a byte at a time cannot hold its slot forever."""


class RouteTable:
    """``{(method, "/v1/tasks/{task_id}"): scope}`` compiled for matching raw request paths."""

    def __init__(self, scopes: Mapping[tuple[str, str], str | None],
                 pending_ok: set[tuple[str, str]]) -> None:
        self._routes = [(method, re.compile("^" + re.sub(r"\{[^}/]+\}", "[^/]+", template) + "$"),
                         template, needed, (method, template) in pending_ok)
                        for (method, template), needed in scopes.items()]

    def match(self, method: str, path: str) -> tuple[str | None, bool] | None:
        """``(scope needed, pending tokens allowed)`` of the route, ``None`` for an unknown one."""
        for m, regex, _template, needed, pending in self._routes:
            if m == method and regex.match(path):
                return needed, pending
        return None


@dataclass
class _Exchange:
    """What the gate learns about one request while the app handles it."""

    status: int = 0
    bytes_out: int = 0
    started: bool = False
    refused: FedError | None = None
    received: int = 0
    body_done: bool = False
    first_byte: float = field(default_factory=time.monotonic)


class Gate:
    """ASGI middleware: authentication, scope, body limits and timeouts, upload slots, audit.

    Parameters
    ----------
    app
        The runner's FastAPI app; its routes find the principal in ``request.state.principal``.
    accounts, audit
        Token lookup and the audit log.
    routes
        The route → scope table (``ROUTE_SCOPES``).
    limits
        Body sizes, timeouts and upload slots.
    """

    def __init__(self, app: ASGIApp, accounts: Accounts, audit: AuditLog, routes: RouteTable,
                 limits: GateLimits) -> None:
        self.app, self.accounts, self.audit, self.routes = app, accounts, audit, routes
        self.limits = limits
        self._slots: asyncio.Semaphore | None = None

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:  # made lazily: it must belong to the server's running loop
            self._slots = asyncio.Semaphore(self.limits.max_concurrent_uploads)
        return self._slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        has_body = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
        route = self.routes.match(scope["method"], scope["path"])
        principal: Principal | None = None
        if route is not None and route[0] is not None:
            needed, pending_ok = route
            try:
                principal = self.accounts.authenticate(headers.get("authorization"),
                                                       allow_pending=pending_ok)
                if needed:
                    principal.require(needed)
            except FedError as exc:
                await self._refuse(send, exc, close=has_body)
                self._audit(scope, principal, exc.status, {})
                return
            scope.setdefault("state", {})["principal"] = principal
        limit = self.limits.max_body if principal is not None else self.limits.max_anonymous_body
        try:
            declared = int(headers.get("content-length", "0"))
        except ValueError:
            declared = limit + 1
        if declared > limit:
            await self._refuse(send, _too_large(limit), close=True)
            if principal is not None:
                self._audit(scope, principal, 413, {})
            return
        large = has_body and ("transfer-encoding" in headers or declared > LARGE_BODY)
        if large:
            try:
                await asyncio.wait_for(self.slots.acquire(), self.limits.body_timeout)
            except TimeoutError:
                await self._refuse(send, RunnerBusy(
                    "too many uploads in progress on this runner",
                    "retry in a few seconds; the coordinator does so by itself"), close=True)
                return
        ex = _Exchange()
        try:
            await self._run(scope, receive, send, ex, limit)
        finally:
            if large:
                self.slots.release()
        if principal is not None or ex.status in (401, 403):
            self._audit(scope, principal, ex.status, scope.get("state", {}).get("audit", {}),
                        ex.bytes_out)

    async def _run(self, scope: Scope, receive: Receive, send: Send, ex: _Exchange,
                   limit: int) -> None:
        limits = self.limits

        async def guarded_receive() -> Message:
            if ex.refused is not None:
                return {"type": "http.disconnect"}
            if ex.body_done:  # e.g. waiting for a disconnect during a long poll: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), limits.body_timeout)
            except TimeoutError:
                ex.refused = RequestTimeout("the request body stopped arriving",
                                            "send the whole body without long pauses")
                return {"type": "http.disconnect"}
            ex.received += len(message.get("body", b""))
            elapsed = time.monotonic() - ex.first_byte
            if ex.received > limit:
                ex.refused = _too_large(limit)
            elif elapsed > limits.body_timeout and \
                    ex.received < (elapsed - limits.body_timeout) * limits.body_min_rate:
                ex.refused = RequestTimeout("the request body arrives too slowly",
                                            "send the body at a reasonable rate")
            if ex.refused is not None:
                return {"type": "http.disconnect"}  # the app stops reading; we answer below
            ex.body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def guarded_send(message: Message) -> None:
            if ex.refused is not None:
                return  # the app's answer to a body we cut off is replaced by ours
            if message["type"] == "http.response.start":
                ex.started, ex.status = True, int(message["status"])
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-length":
                        ex.bytes_out = int(v)
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if ex.refused is None:
                raise
        if ex.refused is not None and not ex.started:
            ex.status = ex.refused.status
            await self._refuse(send, ex.refused, close=True)

    @staticmethod
    async def _refuse(send: Send, exc: FedError, *, close: bool) -> None:
        body = json.dumps(exc.to_body()).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        if close:  # the rest of an unread body is never read: hang up after answering
            headers.append((b"connection", b"close"))
        if exc.status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _audit(self, scope: Scope, principal: Principal | None, status: int,
               extra: dict[str, Any], bytes_out: int = 0) -> None:
        self.audit.record(principal=principal.name if principal else None,
                          token_id=principal.token_id if principal else None,
                          method=scope["method"], path=scope["path"], status=status,
                          bytes_out=bytes_out, **extra)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body over {limit} bytes",
                           "send smaller payloads (a valid token allows max_upload_bytes)")


__all__ = ["Gate", "GateLimits", "RequestTimeout", "RouteTable", "RunnerBusy"]
