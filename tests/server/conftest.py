"""A Jupyter server per test with the jupyter_fed extension, through pytest-jupyter's fixtures.

The fixtures and hooks of ``pytest_jupyter.jupyter_server`` are imported here rather than named
in ``pytest_plugins`` (pytest only allows that in the root conftest), so they apply to this folder.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403

API = "jupyter-fed/api/v1"


@pytest.fixture()
def fed_runners() -> list[dict[str, str]]:
    """Runners the server connects at start (``JupyterFedApp.runners``); modules override it."""
    return []


@pytest.fixture()
def jp_server_config(tmp_path: Path, fed_runners: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "ServerApp": {
            # terminals off: pytest-jupyter adds them, and their websocket trips the auth warning check
            "jpserver_extensions": {"jupyter_fed": True, "jupyter_server_terminals": False},
            "allow_root": True,
            "allow_unauthenticated_access": False,
            "reraise_server_extension_failures": True,
        },
        "JupyterFedApp": {"state_dir": str(tmp_path / "fed-state"), "runners": fed_runners,
                          "round_timeout": 120.0, "event_keepalive": 1.0},
    }


@pytest.fixture()
def fed_app(jp_serverapp: Any) -> Any:
    """The extension app the server loaded."""
    return jp_serverapp.extension_manager.extension_points["jupyter_fed"].app


@pytest.fixture()
def server_url(jp_serverapp: Any, jp_http_port: int, jp_base_url: str, http_server: Any) -> str:
    """Base URL of the live test server, for clients other than ``jp_fetch`` (httpx, the SDK)."""
    return f"http://localhost:{jp_http_port}{jp_base_url}"


@pytest.fixture()
def server_token(jp_serverapp: Any) -> str:
    return jp_serverapp.identity_provider.token


@pytest.fixture()
def api(jp_fetch: Any) -> Any:
    """``await api("GET", "sessions", body=None, params=None)`` → (status, decoded JSON or bytes)."""

    async def call(method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        if body is not None:
            kw["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kw["body"] = b""
        resp = await jp_fetch(*API.split("/"), *path.split("/"), method=method,
                              raise_error=False, **kw)
        ctype = resp.headers.get("Content-Type", "")
        data = json.loads(resp.body) if "json" in ctype and resp.body else resp.body
        return resp.code, data

    return call


async def sse_frames(lines: Any) -> Any:
    """Parse a server-sent event stream (an async iterator of lines) into (event, data) pairs."""
    kind, data = "message", []
    async with aclosing(lines):  # finalise the line iterator here, not at loop teardown
        async for line in lines:
            if line == "":
                if data:
                    yield kind, json.loads("\n".join(data))
                kind, data = "message", []
            elif line.startswith(":"):
                continue
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
