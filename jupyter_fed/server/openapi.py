"""The REST API as an OpenAPI document, built from the route table and the body models.

Served at ``GET /jupyter-fed/api/v1/openapi.json`` (authenticated like every route) for clients
and for fuzzing (``tests/security/test_jupyter_server_hostile.py`` runs schemathesis on it).
``README.md`` beside this file stays the human-readable contract; a test checks that this
document covers every route in ``routes.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from jupyter_fed._version import __version__
from jupyter_fed.server.bodies import (
    AdminBody,
    CodeBody,
    InvitationBody,
    JoinBody,
    RunnerBody,
    SessionBody,
    SimulationBody,
)

__all__ = ["OPERATIONS", "openapi"]

_NUMBER = {"type": "number", "minimum": 0}
_INTEGER = {"type": "integer", "minimum": 0}

#: (method, path under the API prefix, body model, query parameters, summary)
OPERATIONS: list[tuple[str, str, type[BaseModel] | None, dict[str, dict[str, Any]], str]] = [
    ("get", "/status", None, {}, "Version of the API and whether the coordinator has booted"),
    ("get", "/openapi.json", None, {}, "This document"),
    ("get", "/runners", None, {}, "Connected runners with their health"),
    ("post", "/runners", RunnerBody, {}, "Connect a runner (its token stays on the server)"),
    ("delete", "/runners/{name}", None, {}, "Forget a runner"),
    ("post", "/runners/{name}/admin", AdminBody, {}, "A call to a runner's admin API"),
    ("post", "/invitations", InvitationBody, {}, "Redeem an invitation and keep the connection"),
    ("get", "/datasets", None, {}, "The catalog across runners"),
    ("get", "/packages", None, {}, "The packages this coordinator runs"),
    ("post", "/code", CodeBody, {}, "Keep a builder's own package (its plan runs here)"),
    ("get", "/sessions", None, {}, "Every session"),
    ("post", "/sessions", SessionBody, {}, "Create a session"),
    ("post", "/simulations", SimulationBody, {},
     "Start a session on simulated clients (partitions of the rows sent)"),
    ("get", "/sessions/{sid}", None, {}, "One session"),
    ("post", "/sessions/{sid}/start", None, {}, "Open a session for clients"),
    ("post", "/sessions/{sid}/cancel", None, {}, "Cancel a session"),
    ("post", "/sessions/{sid}/resume", None, {}, "Resume an interrupted session"),
    ("post", "/sessions/{sid}/join", JoinBody, {}, "Add clients to a session"),
    ("get", "/sessions/{sid}/wait", None, {"timeout": _NUMBER, "after_round": _INTEGER},
     "Long poll until the session ends or a later round is committed"),
    ("get", "/sessions/{sid}/metrics", None, {}, "Metrics per round"),
    ("get", "/sessions/{sid}/rounds", None, {}, "Committed rounds"),
    ("get", "/sessions/{sid}/logs", None, {"after": _INTEGER}, "Log lines after an id"),
    ("get", "/sessions/{sid}/artefact", None, {},
     "The session's artefact (model or results) as safetensors"),
    ("get", "/sessions/{sid}/artefact/meta", None, {}, "How to rebuild the artefact"),
    ("get", "/sessions/{sid}/model", None, {}, "Alias of /artefact"),
    ("get", "/sessions/{sid}/model/meta", None, {}, "Alias of /artefact/meta"),
    ("get", "/sessions/{sid}/results", None, {}, "Alias of /artefact"),
    ("get", "/sessions/{sid}/results/meta", None, {}, "Alias of /artefact/meta"),
    ("get", "/events", None, {"session": {"type": "string"}},
     "Server-sent events (rounds, status, logs); the stream does not end by itself"),
]

_ERROR = {"type": "object", "required": ["code", "message", "hint"],
          "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                         "hint": {"type": "string"}, "details": {}}}


def openapi(base_path: str = "/jupyter-fed/api/v1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API mounted at ``base_path``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    for method, path, body, query, summary in OPERATIONS:
        op: dict[str, Any] = {"summary": summary, "operationId": f"{method}{path}",
                              "responses": {"default": {"description": "an error",
                                                        "content": {"application/json": {
                                                            "schema": {"$ref": "#/components/"
                                                                       "schemas/Error"}}}},
                                            "2XX": {"description": "success"}}}
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _path_params(path)]
        params += [{"name": name, "in": "query", "required": False, "schema": schema}
                   for name, schema in query.items()]
        if params:
            op["parameters"] = params
        if body is not None:
            schema = body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[body.__name__] = schema
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}}
        paths.setdefault(path, {})[method] = op
    return {"openapi": "3.1.0",
            "info": {"title": "jupyter-fed REST API", "version": __version__},
            "servers": [{"url": base_path}], "paths": paths,
            "components": {"schemas": schemas}}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
