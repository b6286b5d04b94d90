"""Every route of the extension refuses a request without Jupyter credentials."""

from __future__ import annotations

import re
import warnings
from typing import Any

from jupyter_server.utils import JupyterServerAuthWarning
from tornado.routing import PathMatches
from tornado.web import RequestHandler

from jupyter_fed.server.routes import ROUTES

METHODS = ("get", "post", "put", "patch", "delete")


def _extension_routes(web_app: Any) -> list[tuple[str, type[RequestHandler]]]:
    """(regex, handler) of every rule the server registered under /jupyter-fed/."""
    found = []
    for host_rule in web_app.default_router.rules:
        for rule in getattr(host_rule.target, "rules", []):
            if isinstance(rule.matcher, PathMatches) and "/jupyter-fed/" in rule.matcher.regex.pattern:
                found.append((rule.matcher.regex.pattern, rule.target))
    return found


def _concrete(pattern: str) -> str:
    """A path matching the route's pattern: each group replaced by an example value."""
    path = re.sub(r"\(\?P<action>[^)]*\)", "start", pattern)
    path = re.sub(r"\(\?P<view>[^)]*\)", "metrics", path)
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "x1", path)
    return path.replace(".*", "anything").replace("\\.", ".").rstrip("$")


def _is_authenticated(method: Any) -> bool:
    """Wrapped by ``tornado.web.authenticated`` (the check jupyter_server itself makes)."""
    return hasattr(method, "__wrapped__") and method.__code__.co_qualname.startswith("authenticated")


def _implemented(handler: type[RequestHandler]) -> list[str]:
    return [m for m in METHODS if getattr(handler, m) is not getattr(RequestHandler, m)]


def test_every_route_is_registered_and_decorated(jp_serverapp: Any) -> None:
    routes = _extension_routes(jp_serverapp.web_app)

    handlers = {h for _, h in routes}

    assert handlers == {h for _, h in ROUTES}
    for handler in handlers:
        for method in _implemented(handler):
            assert _is_authenticated(getattr(handler, method)), (handler, method)


async def test_every_route_refuses_requests_without_a_token(jp_serverapp: Any, http_server_client: Any
                                                            ) -> None:
    routes = _extension_routes(jp_serverapp.web_app)
    checked = 0

    for pattern, handler in routes:
        path = _concrete(pattern)
        assert re.fullmatch(pattern, path), (pattern, path)  # the request reaches this handler
        for method in _implemented(handler):
            for headers in ({}, {"Authorization": "token not-the-token"}):
                resp = await http_server_client.fetch(
                    path, method=method.upper(), headers=headers, raise_error=False,
                    body=b"{}" if method in ("post", "put", "patch") else None,
                    allow_nonstandard_methods=True)
                assert resp.code in (401, 403), (method, pattern, resp.code)
                checked += 1

    assert checked >= 2 * len(ROUTES)


async def test_refusal_is_a_json_error_body(api: Any) -> None:
    status, body = await api("GET", "sessions", headers={"Authorization": "token wrong"})

    assert status == 403
    assert body["code"] == "unauthorized"
    assert "token" in body["hint"]


def test_loading_the_extension_raises_no_auth_warning(jp_configurable_serverapp: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jp_configurable_serverapp()

    assert not [w for w in caught if issubclass(w.category, JupyterServerAuthWarning)]
