"""Thin REST handlers over the server's coordinator: parse the request, call, reply.

Every handler derives from ``FedHandler``, the one place where a ``FedError`` becomes its HTTP
status and JSON body ``{code, message, hint[, details]}`` and where anything unexpected becomes a
500 ``internal_error`` that shows no traceback (the server log has it). The session logic lives in
``jupyter_fed.coordinator``; nothing here decides anything about sessions.
"""

from __future__ import annotations

import json
import logging
import math
from http.client import responses
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel
from tornado import web

from jupyter_fed._version import __version__
from jupyter_fed.errors import ConfigError, FedError, NotFoundError
from jupyter_fed.server.bodies import (
    AdminBody,
    CodeBody,
    InvitationBody,
    JoinBody,
    RunnerBody,
    SessionBody,
    SimulationBody,
    parse_body,
)
from jupyter_fed.server.host import CoordinatorHost, CoordinatorUnavailable
from jupyter_fed.wire.models import json_safe

if TYPE_CHECKING:
    from jupyter_fed.coordinator import Coordinator
    from jupyter_fed.server.app import JupyterFedApp

B = TypeVar("B", bound=BaseModel)

#: Largest artefact metadata sent inline in ``X-Fed-Artefact-Meta``; proxies and HTTP clients cap
#: header sizes, so bigger metadata is left to ``GET /sessions/{id}/artefact/meta``.
META_HEADER_LIMIT = 8192

_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


class FedHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every jupyter-fed route: JSON in, JSON out, errors as ``{code, message, hint}``."""

    @property
    def fed(self) -> JupyterFedApp:
        return self.extensionapp  # type: ignore[return-value]

    @property
    def host(self) -> CoordinatorHost:
        if self.fed.host is None:  # only if a route were served before initialize_settings ran
            raise CoordinatorUnavailable("the jupyter-fed extension is not initialised", "")
        return self.fed.host

    async def coordinator(self) -> Coordinator:
        """The coordinator this server hosts (waits for it to finish booting)."""
        return await self.host.get()

    def body(self, model: type[B]) -> B:
        return parse_body(self.request.body, model)

    def query_number(self, name: str, default: float, *, integer: bool = False) -> float:
        """A non-negative number from the query string; 422 naming the parameter otherwise."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value: float = int(raw) if integer else float(raw)
        except ValueError:
            value = -1
        if not (value >= 0 and math.isfinite(value)):
            kind = "a whole number" if integer else "a number"
            raise ConfigError(f"query parameter {name}={raw!r} is invalid", f"give {kind} >= 0",
                              details=[{"field": name, "error": f"must be {kind} >= 0"}])
        return value

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(json_safe(data), allow_nan=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, FedError):
            status, body = exc.status, exc.to_body()
        elif exc is None or isinstance(exc, web.HTTPError):
            status = exc.status_code if exc is not None else status_code
            message = (exc.log_message if exc is not None else None) or responses.get(status, "error")
            body = {"code": _HTTP_CODES.get(status, "http_error"), "message": message, "hint": ""}
            if status == 403 and getattr(self, "_jupyter_current_user", None) is None:
                body = {"code": "unauthorized",
                        "message": "not authenticated: the Jupyter token is missing or wrong",
                        "hint": "send 'Authorization: token <token>'; `jupyter server list` shows it"}
        else:  # a bug: say so, but never ship the traceback to the client
            status = 500
            body = {"code": "internal_error",
                    "message": "internal error in the jupyter-fed server extension",
                    "hint": "the Jupyter server log has the details"}
        self.set_status(status)
        self.finish(json.dumps(body))

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        if isinstance(value, FedError):  # an expected refusal: one line, no traceback
            # 4xx: the access log already has the line; a 5xx deserves the reason at warning level
            level = logging.WARNING if value.status >= 500 else logging.DEBUG
            self.log.log(level, "jupyter_fed %s %s -> %d %s: %s", self.request.method,
                         self.request.path, value.status, value.code, value.message)
        else:
            super().log_exception(typ, value, tb)


class StatusHandler(FedHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply({"version": __version__, "api": "v1", "ready": self.host.ready})


class OpenAPIHandler(FedHandler):
    """The API as an OpenAPI document (see ``openapi.py``)."""

    @web.authenticated
    async def get(self) -> None:
        from jupyter_fed.server.openapi import openapi
        from jupyter_fed.server.routes import API_PREFIX

        self.reply(openapi(self.base_url.rstrip("/") + API_PREFIX))


class RunnersHandler(FedHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(await (await self.coordinator()).runners())

    @web.authenticated
    async def post(self) -> None:
        body = self.body(RunnerBody)
        self.reply(await (await self.coordinator()).add_runner(body.name, body.url, body.token,
                                                                   body.fingerprint),
                   201)


class RunnerHandler(FedHandler):
    @web.authenticated
    async def delete(self, name: str) -> None:
        await (await self.coordinator()).remove_runner(name)
        self.set_status(204)
        self.finish()


class RunnerAdminHandler(FedHandler):
    """A runner's admin API (users, tokens, policies, audit), called with the stored token."""

    @web.authenticated
    async def post(self, name: str) -> None:
        body = self.body(AdminBody)
        self.reply(await (await self.coordinator()).runner_admin(name, body.method, body.path, body.body,
                                   body.params))


class InvitationsHandler(FedHandler):
    @web.authenticated
    async def post(self) -> None:
        body = self.body(InvitationBody)
        # The client is its address: a token-authenticated caller gets a new anonymous user name
        # on every request, so a name would not count anything.
        self.reply(await (await self.coordinator()).join_invitation(body.blob, body.password, body.name,
                                   client=str(self.request.remote_ip)), 201)


class DatasetsHandler(FedHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(await (await self.coordinator()).catalog())


class PackagesHandler(FedHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply((await self.coordinator()).packages())


class CodeHandler(FedHandler):
    """A builder's own package: the coordinator keeps it to run its plan (runners run its steps
    only after a custodian approved them)."""

    @web.authenticated
    async def post(self) -> None:
        body = self.body(CodeBody)
        self.reply((await self.coordinator()).add_code(body.name, body.files), 201)


class SessionsHandler(FedHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply((await self.coordinator()).sessions())

    @web.authenticated
    async def post(self) -> None:
        kwargs = self.body(SessionBody).as_kwargs()
        kwargs["policy"].setdefault("round_timeout", self.fed.round_timeout)
        self.reply((await self.coordinator()).create_session(**kwargs), 201)


class SimulationsHandler(FedHandler):
    """``POST /simulations``: a session on simulated clients, hosted by this server's coordinator
    (so the sidebar and every client see it); the engine runs beside the server."""

    @web.authenticated
    async def post(self) -> None:
        from jupyter_fed.simulation import start_simulation

        kwargs = self.body(SimulationBody).as_kwargs()
        policy = kwargs["session_policy"] = dict(kwargs["session_policy"] or {})
        policy.setdefault("round_timeout", self.fed.round_timeout)
        self.reply(await start_simulation(await self.coordinator(), **kwargs), 201)


class SessionHandler(FedHandler):
    @web.authenticated
    async def get(self, sid: str) -> None:
        self.reply((await self.coordinator()).session(sid))


class SessionActionHandler(FedHandler):
    """``start``, ``cancel`` and ``resume``: no body, the session comes back."""

    @web.authenticated
    async def post(self, sid: str, action: str) -> None:
        coordinator = await self.coordinator()
        if action == "start":
            self.reply(coordinator.start_session(sid))
        elif action == "cancel":
            self.reply(await coordinator.cancel(sid))
        else:  # the route admits only start, cancel and resume
            self.reply(await coordinator.resume(sid))


class JoinHandler(FedHandler):
    @web.authenticated
    async def post(self, sid: str) -> None:
        tasks = [t.model_dump() for t in self.body(JoinBody).tasks]
        self.reply(await (await self.coordinator()).join(sid, tasks))


class WaitHandler(FedHandler):
    """Long poll: answers when the session ends or after ``timeout`` (capped by ``max_wait``)."""

    @web.authenticated
    async def get(self, sid: str) -> None:
        limit = self.fed.max_wait
        timeout = min(self.query_number("timeout", limit), limit)
        after = self.get_query_argument("after_round", None)
        after_round = None if after is None else int(self.query_number("after_round", 0,
                                                                       integer=True))
        self.reply(await (await self.coordinator()).wait(sid, timeout, after_round))


class SessionViewHandler(FedHandler):
    """``metrics`` and ``rounds``: read-only views of one session."""

    @web.authenticated
    async def get(self, sid: str, view: str) -> None:
        coordinator = await self.coordinator()
        self.reply(coordinator.metrics(sid) if view == "metrics" else coordinator.rounds(sid))


class LogsHandler(FedHandler):
    @web.authenticated
    async def get(self, sid: str) -> None:
        after = int(self.query_number("after", 0, integer=True))
        self.reply((await self.coordinator()).logs(sid, after))


class ArtefactHandler(FedHandler):
    """The session's one artefact (a model, or analytics results) as safetensors bytes.

    Its JSON metadata rides in a header when it is small (so bytes and metadata describe the same
    round) and is always at ``…/meta``; never pickle. ``/model`` and ``/results`` are aliases.
    """

    @web.authenticated
    async def get(self, sid: str) -> None:
        data, meta = (await self.coordinator()).artefact_bytes(sid)
        encoded = json.dumps(json_safe(meta), separators=(",", ":"))  # ASCII: safe in a header
        self.set_header("X-Fed-Artefact-Round", str(meta.get("round", "")))
        if len(encoded) <= META_HEADER_LIMIT:
            self.set_header("X-Fed-Artefact-Meta", encoded)
        self.set_header("Content-Disposition",
                        f'attachment; filename="{sid}-round{meta.get("round", "")}.safetensors"')
        self.finish(data, set_content_type="application/octet-stream")


class ArtefactMetaHandler(FedHandler):
    @web.authenticated
    async def get(self, sid: str) -> None:
        _, meta = (await self.coordinator()).artefact_bytes(sid)
        self.reply(meta)


class NotFoundHandler(FedHandler):
    """Any other path under the API: a JSON 404 rather than Jupyter's HTML page."""

    def _missing(self) -> None:
        raise NotFoundError(f"no route {self.request.method} {self.request.path} in the jupyter-fed "
                            "API", "the routes are listed in jupyter_fed/server/README.md")

    @web.authenticated
    def get(self) -> None:
        self._missing()

    @web.authenticated
    def post(self) -> None:
        self._missing()

    @web.authenticated
    def put(self) -> None:
        self._missing()

    @web.authenticated
    def patch(self) -> None:
        self._missing()

    @web.authenticated
    def delete(self) -> None:
        self._missing()
