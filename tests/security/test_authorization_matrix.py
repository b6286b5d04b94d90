"""Every runner route x every scope: allowed exactly when the route's declared scope is held."""

from __future__ import annotations

import pytest
from conftest import make_token

from jupyter_fed.runner.accounts import ALL_SCOPES, IMPLIES
from jupyter_fed.runner.app import ROUTE_SCOPES, create_app
from jupyter_fed.runner.settings import RunnerSettings

DUMMY = {"{name}": "nope", "{task_id}": "nope", "{token_id}": "tok_nope", "{inv_id}": "inv_nope"}


def _path(template: str) -> str:
    for k, v in DUMMY.items():
        template = template.replace(k, v)
    return template


def test_the_scope_table_covers_every_route(tmp_path) -> None:
    settings = RunnerSettings(name="t", home=tmp_path, data_roots=[tmp_path], warmup=False)
    app = create_app(settings)
    routes = {(m, r.path) for r in app.routes for m in getattr(r, "methods", ()) - {"HEAD"}}
    undeclared = routes - set(ROUTE_SCOPES) - {("GET", "/openapi.json")}
    assert not undeclared
    assert set(ROUTE_SCOPES) <= routes


@pytest.mark.parametrize("scope", [*ALL_SCOPES, None])
def test_each_route_allows_exactly_its_scope(vault, admin, scope) -> None:
    token = make_token(admin, "matrix", "administrator", [scope]) if scope else "jfr_bogus"
    with vault.http(token) as http:
        for (method, template), needed in sorted(ROUTE_SCOPES.items(), key=str):
            kwargs = {"json": {}} if method in ("POST", "PUT") else {}
            resp = http.request(method, _path(template), **kwargs)
            if needed is None:
                allowed = True
            elif scope is None:
                allowed = False
            else:
                allowed = needed == "" or scope in (needed, "admin") or \
                    needed in IMPLIES.get(scope, ())
            where = f"{method} {template} with scope {scope}: {resp.status_code} {resp.text[:120]}"
            if allowed:
                assert resp.status_code not in (401, 403), where
            else:
                assert resp.status_code == (401 if scope is None else 403), where
                assert resp.json()["code"] in ("unauthorized", "forbidden"), where
