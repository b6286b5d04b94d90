"""Every runner route x every scope: allowed exactly when the route's declared scope is held."""

from __future__ import annotations

import pytest
from conftest import make_token

from jupyter_fed.runner.accounts import ALL_SCOPES, IMPLIES
from jupyter_fed.runner.accounts import ROLES as ALL_ROLES
from jupyter_fed.runner.app import ROUTE_SCOPES, create_app
from jupyter_fed.runner.settings import RunnerSettings

DUMMY = {"{name}": "nope", "{task_id}": "nope", "{token_id}": "tok_nope", "{inv_id}": "inv_nope",
         "{grant_id}": "grt_nope", "{request_id}": "req_nope"}


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


DATASET_ROUTES = sorted((m, t) for (m, t) in ROUTE_SCOPES if "{name}" in t)


@pytest.mark.parametrize("role", ["model_builder", "data_custodian"])
@pytest.mark.parametrize("access", ["granted", "not granted", "public", "no such dataset"])
def test_each_dataset_route_by_role_and_grant(vault, admin, role, access) -> None:
    """The dataset dimension: what a route answers depends on the caller's grant, and a dataset
    the caller may not see is answered exactly like one that does not exist."""
    user = f"dim_{role}_{access.replace(' ', '_')}"
    token = make_token(admin, user, role, None, grant=("test",) if access == "granted" else ())
    name = "ghost" if access == "no such dataset" else "test"
    policy = admin.get("/v1/datasets/test/policy").json()
    if access == "public":
        admin.put("/v1/datasets/test/policy", json={**policy, "public": True})
    try:
        with vault.http(token) as http:
            answers = {}
            for method, template in DATASET_ROUTES:
                if method == "DELETE":
                    continue  # a custodian would really delete it; its scope is covered above
                kwargs = {"json": policy} if method == "PUT" else {}
                answers[(method, template)] = http.request(
                    method, template.replace("{name}", name), **kwargs)
            listed = {d["name"] for d in http.get("/v1/datasets").json()}
    finally:
        admin.put("/v1/datasets/test/policy", json=policy)
    for (method, template), resp in answers.items():
        needed = ROUTE_SCOPES[(method, template)]
        where = f"{role} {access} {method} {template}: {resp.status_code} {resp.text[:120]}"
        if needed not in ALL_ROLES[role]:
            assert resp.status_code == 403, where
        elif access == "no such dataset" or (access == "not granted" and role == "model_builder"):
            assert resp.status_code == 404, where
            assert resp.json()["message"] == f"no dataset named {name!r} on runner 'vault'", where
        else:
            assert resp.status_code == 200, where
    sees = role == "data_custodian" or access in ("granted", "public")
    assert ("test" in listed) == sees
