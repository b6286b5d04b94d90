"""Every route of the REST API in one table (the contract is in ``README.md`` beside this file)."""

from __future__ import annotations

from tornado.web import RequestHandler

from jupyter_fed.server.events import EventsHandler
from jupyter_fed.server.handlers import (
    ArtefactHandler,
    ArtefactMetaHandler,
    CodeHandler,
    DatasetsHandler,
    InvitationsHandler,
    JoinHandler,
    LogsHandler,
    NotFoundHandler,
    OpenAPIHandler,
    PackagesHandler,
    RunnerAdminHandler,
    RunnerHandler,
    RunnersHandler,
    SessionActionHandler,
    SessionHandler,
    SessionsHandler,
    SessionViewHandler,
    SimulationsHandler,
    StatusHandler,
    WaitHandler,
)

__all__ = ["API_PREFIX", "ROUTES"]

#: Everything jupyter-fed serves lives under this prefix (after the server's ``base_url``).
API_PREFIX = "/jupyter-fed/api/v1"

_SID = r"(?P<sid>[^/]+)"

#: (path under ``API_PREFIX``, handler). Order matters only for the final catch-all.
ROUTES: list[tuple[str, type[RequestHandler]]] = [
    (r"/status", StatusHandler),
    (r"/openapi\.json", OpenAPIHandler),
    (r"/runners", RunnersHandler),
    (r"/runners/(?P<name>[^/]+)", RunnerHandler),
    (r"/runners/(?P<name>[^/]+)/admin", RunnerAdminHandler),
    (r"/invitations", InvitationsHandler),
    (r"/datasets", DatasetsHandler),
    (r"/packages", PackagesHandler),
    (r"/code", CodeHandler),
    (r"/sessions", SessionsHandler),
    (r"/simulations", SimulationsHandler),
    (rf"/sessions/{_SID}", SessionHandler),
    (rf"/sessions/{_SID}/(?P<action>start|cancel|resume)", SessionActionHandler),
    (rf"/sessions/{_SID}/join", JoinHandler),
    (rf"/sessions/{_SID}/wait", WaitHandler),
    (rf"/sessions/{_SID}/(?P<view>metrics|rounds)", SessionViewHandler),
    (rf"/sessions/{_SID}/logs", LogsHandler),
    (rf"/sessions/{_SID}/artefact", ArtefactHandler),
    (rf"/sessions/{_SID}/artefact/meta", ArtefactMetaHandler),
    # /model and /results name the same artefact (the reference SDK's words for it)
    (rf"/sessions/{_SID}/model", ArtefactHandler),
    (rf"/sessions/{_SID}/model/meta", ArtefactMetaHandler),
    (rf"/sessions/{_SID}/results", ArtefactHandler),
    (rf"/sessions/{_SID}/results/meta", ArtefactMetaHandler),
    (r"/events", EventsHandler),
    (r"/.*", NotFoundHandler),
]
