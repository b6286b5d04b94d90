"""``/v1/code``: builders submit their own packages; custodians review, approve or deny them.

| route | scope | who sees what |
| --- | --- | --- |
| ``POST /v1/code`` | ``run_custom_code`` | submit source files (``CodeBundle``) |
| ``GET /v1/code`` | any token | a custodian (``register_dataset``) sees every request, others their own |
| ``GET /v1/code/{code_id}`` | any token | the request with its source: its submitter or a custodian |
| ``POST /v1/code/{code_id}/approve`` | ``register_dataset`` | approve for named datasets |
| ``POST /v1/code/{code_id}/deny`` | ``register_dataset`` | deny |

Another builder's request is answered as if it did not exist. Each route sets the audit row's
details (request id and hash, datasets), which the gate writes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from jupyter_fed.errors import AuthError, NotFoundError
from jupyter_fed.packages.custom import CodeBundle
from jupyter_fed.runner.accounts import Principal
from jupyter_fed.runner.custom_code import CodeStore

__all__ = ["CODE_ROUTE_SCOPES", "add_code_routes"]

CODE_ROUTE_SCOPES: dict[tuple[str, str], str | None] = {
    ("POST", "/v1/code"): "run_custom_code",
    ("GET", "/v1/code"): "",
    ("GET", "/v1/code/{code_id}"): "",
    ("POST", "/v1/code/{code_id}/approve"): "register_dataset",
    ("POST", "/v1/code/{code_id}/deny"): "register_dataset",
}
"""Merged into the runner's ``ROUTE_SCOPES`` (the gate's table)."""


class CodeSubmission(BaseModel):
    name: str = Field(max_length=64)
    files: dict[str, str] = Field(max_length=64)
    description: str = Field("", max_length=2000)
    digest: str | None = Field(None, description="the hash the client computed: refused if the "
                               "runner computes another")


class CodeDecision(BaseModel):
    datasets: list[str] = Field(default_factory=list, max_length=1000)
    note: str = Field("", max_length=2000)


def _custodian(p: Principal) -> bool:
    return p.is_admin or "register_dataset" in p.scopes


def add_code_routes(app: FastAPI, codes: CodeStore) -> None:
    """Add the routes above, over ``codes``, to the runner's ``app`` (the principal comes from the
    gate). Added on the app itself, not as an included router, so that ``app.routes`` lists them
    for the gate's table check."""

    def scope(name: str) -> Any:
        async def dep(request: Request) -> Principal:
            principal = getattr(request.state, "principal", None)
            if principal is None:  # the gate's table and the routes disagree: refuse
                raise AuthError("missing bearer token", "send 'Authorization: Bearer <token>'")
            if name:
                principal.require(name)
            return principal
        return Depends(dep)

    def visible(code_id: str, principal: Principal, source: bool = False) -> dict[str, Any]:
        row = codes.get(code_id, source=source)
        if row["principal"] != principal.name and not _custodian(principal):
            raise NotFoundError(f"no code request {code_id!r} on this runner", "")
        return row

    @app.post("/v1/code", status_code=201)
    async def submit_code(body: CodeSubmission, request: Request,
                          principal: Principal = scope("run_custom_code")) -> dict[str, Any]:
        bundle = CodeBundle.from_json(body.model_dump())
        bundle.manifest()  # refuse code whose steps or plan cannot be found, before storing it
        request.state.audit = {"package": bundle.package[:200], "step": "submit_code",
                               "params_digest": bundle.digest[:16]}
        return codes.submit(principal.name, bundle, body.description)

    @app.get("/v1/code")
    async def list_code(status: str | None = None, principal: Principal = scope("")
                        ) -> list[dict[str, Any]]:
        return codes.list(None if _custodian(principal) else principal.name, status)

    @app.get("/v1/code/{code_id}")
    async def show_code(code_id: str, principal: Principal = scope("")) -> dict[str, Any]:
        return visible(code_id, principal, source=True)

    @app.post("/v1/code/{code_id}/approve")
    async def approve_code(code_id: str, request: Request,
                           body: Annotated[CodeDecision, Body()],
                           principal: Principal = scope("register_dataset")) -> dict[str, Any]:
        request.state.audit = {"dataset": ",".join(sorted(set(body.datasets)))[:1000],
                               "step": f"approve_code:{code_id}"[:200]}
        row = codes.decide(code_id, principal.name, approve=True, datasets=body.datasets,
                           note=body.note)
        request.state.audit["package"] = row["package"][:200]
        return row

    @app.post("/v1/code/{code_id}/deny")
    async def deny_code(code_id: str, request: Request,
                        body: Annotated[CodeDecision | None, Body()] = None,
                        principal: Principal = scope("register_dataset")) -> dict[str, Any]:
        request.state.audit = {"step": f"deny_code:{code_id}"[:200]}
        row = codes.decide(code_id, principal.name, approve=False,
                           note=body.note if body else "")
        request.state.audit["package"] = row["package"][:200]
        return row
