"""The runner's HTTP surface: routes only. Every route but health needs a scoped bearer token.

No route returns rows: the catalog carries schemas and counts, tasks return what their package's
``local.py`` chose to return (parameters, statistics, aggregates), under the dataset's policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError, StarletteHTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from jupyter_fed._version import __version__
from jupyter_fed.errors import ConfigError, FedError
from jupyter_fed.packages import field_errors, package_names
from jupyter_fed.runner import schemas
from jupyter_fed.runner.accounts import Accounts, Principal
from jupyter_fed.runner.audit import AuditLog
from jupyter_fed.runner.code_routes import CODE_ROUTE_SCOPES, add_code_routes
from jupyter_fed.runner.executor import Executor, check_payload, task_key
from jupyter_fed.runner.gate import Gate, GateLimits, RouteTable
from jupyter_fed.runner.policy import DatasetPolicy, Ledger
from jupyter_fed.runner.registry import no_such_dataset, register_dataset
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire import (
    DatasetInfo,
    DatasetRegistration,
    Health,
    TaskSpec,
    TaskState,
    TaskStatus,
    answer,
)
from jupyter_fed.wire.hello import NONCE_RE
from jupyter_fed.wire.hello import sign as sign_hello
from jupyter_fed.wire.models import Hello

log = logging.getLogger("jupyter_fed.runner")

INLINE_CHECK_BYTES = 256 * 1024
"""Payloads up to this size are checked on the event loop: a thread hop costs more than that."""

ROUTE_SCOPES: dict[tuple[str, str], str | None] = {
    ("GET", "/v1/health"): None,
    ("GET", "/v1/datasets"): "read_catalog",
    ("GET", "/v1/datasets/{name}"): "read_catalog",
    ("POST", "/v1/datasets"): "register_dataset",
    ("POST", "/v1/datasets/lookup"): "read_catalog",
    ("DELETE", "/v1/datasets/{name}"): "register_dataset",
    ("GET", "/v1/datasets/{name}/policy"): "read_catalog",
    ("PUT", "/v1/datasets/{name}/policy"): "register_dataset",
    ("POST", "/v1/tasks"): "create_session",
    ("GET", "/v1/tasks"): "read_user_session",
    ("GET", "/v1/tasks/{task_id}"): "read_user_session",
    ("GET", "/v1/tasks/{task_id}/result"): "read_model",
    ("POST", "/v1/tasks/{task_id}/cancel"): "create_session",
    ("GET", "/v1/users"): "admin",
    ("POST", "/v1/users"): "admin",
    ("DELETE", "/v1/users/{name}"): "admin",
    ("GET", "/v1/tokens"): "admin",
    ("POST", "/v1/tokens"): "admin",
    ("DELETE", "/v1/tokens/{token_id}"): "admin",
    ("POST", "/v1/tokens/info"): "admin",
    ("GET", "/v1/tokens/self"): "",
    ("POST", "/v1/invitations"): "admin",
    ("POST", "/v1/invitations/{inv_id}/redeem"): "",
    ("GET", "/v1/budget"): "admin",
    ("GET", "/v1/budget/self"): "",
    ("GET", "/v1/audit"): "admin",
    ("GET", "/v1/grants/self"): "",
    ("GET", "/v1/grants"): "register_dataset",
    ("POST", "/v1/grants"): "register_dataset",
    ("DELETE", "/v1/grants/{grant_id}"): "register_dataset",
    ("POST", "/v1/requests"): "read_catalog",
    ("GET", "/v1/requests/self"): "",
    ("POST", "/v1/requests/{request_id}/withdraw"): "",
    ("GET", "/v1/requests"): "register_dataset",
    ("GET", "/v1/requests/{request_id}"): "register_dataset",
    ("POST", "/v1/requests/{request_id}/approve"): "register_dataset",
    ("POST", "/v1/requests/{request_id}/deny"): "register_dataset",
}
"""Which scope each route needs: None = no token, "" = any valid token. Documented in README."""
ROUTE_SCOPES.update(CODE_ROUTE_SCOPES)  # custom code requests (runner/code_routes.py)

PENDING_OK = {("POST", "/v1/invitations/{inv_id}/redeem")}
"""Routes an invitation's not-yet-active token may call (to activate itself)."""


def _error(exc: FedError) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status)


def create_app(settings: RunnerSettings, on_ready: Callable[[], None] | None = None) -> FastAPI:
    """Build the runner's FastAPI app around its settings, store and executor."""
    store = RunnerStore(settings.db_path)
    accounts, ledger, audit = Accounts(store), Ledger(store), AuditLog(store)
    executor = Executor(settings, store, ledger)
    grants = executor.grants

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        executor.start()  # worker processes start and warm up while we already serve HTTP
        if on_ready is not None:
            on_ready()
        yield
        executor.shutdown()
        store.close()

    # No /docs or /redoc pages: they load scripts from the internet and a runner needs no UI.
    # The OpenAPI schema stays (it describes routes, never data) for clients and fuzzing.
    app = FastAPI(title=f"jupyter-fed runner {settings.name}", version=__version__,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings, app.state.store, app.state.executor = settings, store, executor

    @app.exception_handler(FedError)
    async def _fed_error(request: Request, exc: FedError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"),
                    "error": e["msg"]} for e in exc.errors()]
        lines = "; ".join(f"{d['field']}: {d['error']}" for d in details)
        return _error(ConfigError(f"invalid request: {lines}", "fix the fields named", details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"code": code, "message": f"{request.method} {request.url.path}: "
                             f"{exc.detail}", "hint": "the routes are listed in the README"},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"code": "internal_error", "message": "the runner hit an internal error",
                             "hint": "see the runner's log"}, status_code=500)

    def scope(name: str, *, pending: bool = False) -> Any:
        # async: a plain function would run on the thread pool, a hop per request for a lookup
        # the gate has already done
        async def dep(request: Request) -> Principal:
            # The gate authenticated the headers before the body was read; checking again here
            # keeps every route safe even if the gate's table and the routes ever disagree.
            principal = getattr(request.state, "principal", None)
            if principal is None:
                principal = accounts.authenticate(request.headers.get("authorization"),
                                                  allow_pending=pending)
                request.state.principal = principal
            if name:
                principal.require(name)
            return principal
        return Depends(dep)

    def dataset_or_404(name: str, principal: Principal | None = None
                       ) -> tuple[str, dict[str, Any]]:
        """A dataset's row; with ``principal``, only if it may see it (else the same 404)."""
        row = store.get_dataset(name)
        if row is None or (principal is not None and not grants.visible(
                principal, name, policy_of(name))):
            raise no_such_dataset(name, settings.name)
        return row

    def policy_of(name: str) -> DatasetPolicy:
        return DatasetPolicy.model_validate(store.get_policy(name) or {})

    # -- catalog ------------------------------------------------------------------------------
    @app.get("/v1/health", response_model=Health, response_model_exclude_none=True)
    async def health(nonce: Annotated[str | None, Query(pattern=NONCE_RE.pattern)] = None
                     ) -> Health:
        """Alive, and, given a ``nonce``, a signed hello proving this is the runner (no token
        needed: it proves the runner's identity to a coordinator before it sends one)."""
        hello = None
        if nonce is not None and (settings.home / "key.pem").exists():
            hello = Hello(nonce=nonce, certificate=(settings.home / "cert.pem").read_text(),
                          signature=sign_hello(settings.home / "key.pem", nonce))
        return Health(name=settings.name, version=__version__, packages=package_names(),
                      hello=hello, ready=executor.pool.warm)

    @app.get("/v1/datasets", response_model=list[DatasetInfo])
    async def list_datasets(principal: Principal = scope("read_catalog")) -> list[dict[str, Any]]:
        """The datasets the caller may use: granted to them, public, or all for a custodian."""
        return [d for d in store.list_datasets()
                if grants.visible(principal, d["name"], policy_of(d["name"]))]

    @app.get("/v1/datasets/{name}", response_model=DatasetInfo)
    async def get_dataset(name: str, principal: Principal = scope("read_catalog")
                          ) -> dict[str, Any]:
        return dataset_or_404(name, principal)[1]

    @app.post("/v1/datasets", response_model=DatasetInfo, status_code=201)
    async def register(body: DatasetRegistration, request: Request,
                       _: Principal = scope("register_dataset")) -> DatasetInfo:
        request.state.audit = {"dataset": body.name}
        # off the loop: the file is read in full, and an object on object storage over the network
        return await asyncio.to_thread(register_dataset, settings, store, body)

    @app.post("/v1/datasets/lookup")
    async def lookup_dataset(path: Annotated[str, Body(embed=True, max_length=4096)],
                             principal: Principal = scope("read_catalog")) -> dict[str, Any]:
        """The registered dataset(s) at a path, among those this token's catalog shows
        (``runner/paths.py``): names data for ``hfl(train_path=...)``, never reads it."""
        from jupyter_fed.runner.paths import lookup

        visible = [d["name"] for d in await list_datasets(principal)]
        return lookup(settings.name, settings.data_roots, store.dataset_paths(), path, visible)

    @app.delete("/v1/datasets/{name}", status_code=204)
    async def delete_dataset(name: str, _: Principal = scope("register_dataset")) -> Response:
        dataset_or_404(name)
        store.delete_dataset(name)
        grants.revoke_all(dataset=name)
        return Response(status_code=204)

    @app.get("/v1/datasets/{name}/policy", response_model=DatasetPolicy)
    async def get_policy(name: str, principal: Principal = scope("read_catalog")
                         ) -> DatasetPolicy:
        """The policy the caller's steps run under: their grant's budget and packages in it."""
        dataset_or_404(name, principal)
        found = grants.effective_policy(principal, name, policy_of(name))
        # None: a custodian without a grant, who sees the dataset's own policy
        return policy_of(name) if found is None else found[0]

    @app.put("/v1/datasets/{name}/policy", response_model=DatasetPolicy)
    async def put_policy(name: str, body: DatasetPolicy, request: Request,
                         _: Principal = scope("register_dataset")) -> DatasetPolicy:
        request.state.audit = {"dataset": name}
        dataset_or_404(name)
        store.set_policy(name, body.model_dump())
        return body

    # -- tasks --------------------------------------------------------------------------------
    @app.post("/v1/tasks", response_model=TaskStatus, status_code=202)
    async def submit(request: Request, spec: Annotated[str, Form(max_length=1_000_000)],
                     tensors: Annotated[UploadFile | None, File()] = None,
                     wait: Annotated[float, Query(ge=0, le=60)] = 0,
                     inline: Annotated[int, Query(ge=0, le=1 << 30)] = 0,
                     principal: Principal = scope("create_session")) -> Any:
        """Queue a step; with ``wait``, answer when it ends (or after ``wait`` seconds, with the
        task as it is), which saves the caller the first long poll of every step; with
        ``inline``, a step that succeeded with at most that many bytes of arrays is answered
        with them (``wire.answer``), which saves the result request — for a token that may
        read results."""
        try:
            task = TaskSpec.model_validate_json(spec)
        except ValidationError as exc:
            details = field_errors(exc, "spec")
            raise ConfigError("invalid task: " + "; ".join(f"{d['field']}: {d['error']}"
                                                           for d in details),
                              "fix the fields named", details=details) from None
        request.state.audit = {
            "dataset": ",".join(sorted(set(task.datasets.values()))), "package": task.package,
            "step": task.step,
            "params_digest": hashlib.sha256(json.dumps(task.params, sort_keys=True,
                                                       default=str).encode()).hexdigest()[:16]}
        payload = await tensors.read() if tensors is not None else None
        # Hashing and checking a large model takes a while: off the loop, which serves others.
        digest = check_payload(task, payload) if len(payload or b"") <= INLINE_CHECK_BYTES \
            else await asyncio.to_thread(check_payload, task, payload)
        status = executor.submit(task, payload, principal, digest=digest)
        key = task_key(principal.name, task.task_id)  # the submitter's own, as submit stored it
        if wait > 0 and not status.state.terminal:
            status = await executor.wait(key, wait)
        if inline and status.has_tensors and status.state is TaskState.succeeded and \
                (principal.is_admin or "read_model" in principal.scopes):
            data = executor.small_result(key, inline)
            if data is not None:
                return Response(answer.pack(status.model_dump_json().encode(), data),
                                media_type=answer.MEDIA_TYPE, status_code=202)
        return status

    @app.get("/v1/tasks")
    async def list_tasks(everyone: Annotated[bool, Query(alias="all")] = False,
                         limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
                         principal: Principal = scope("read_user_session")) -> list[dict[str, Any]]:
        """This principal's tasks; with ``all=true`` (``read_session``) everyone's (metadata only:
        ``runner/sessions.py``)."""
        from jupyter_fed.runner.sessions import list_tasks as listing

        return listing(store, accounts, principal, everyone=everyone, limit=limit)

    @app.get("/v1/tasks/{task_id}", response_model=TaskStatus)
    async def task_status(task_id: str, wait: Annotated[float, Query(ge=0, le=60)] = 0,
                          principal: Principal = scope("read_user_session")) -> TaskStatus:
        return await executor.wait(executor.resolve(task_id, principal), wait)

    @app.get("/v1/tasks/{task_id}/result")
    async def task_result(task_id: str, principal: Principal = scope("read_model")) -> Response:
        return Response(executor.result(executor.resolve(task_id, principal)),
                        media_type="application/octet-stream")

    @app.post("/v1/tasks/{task_id}/cancel", response_model=TaskStatus)
    async def cancel(task_id: str, principal: Principal = scope("create_session")) -> TaskStatus:
        return executor.cancel(executor.resolve(task_id, principal))

    # -- accounts -----------------------------------------------------------------------------
    @app.get("/v1/users")
    async def users(_: Principal = scope("admin")) -> list[dict[str, Any]]:
        return accounts.users()

    @app.post("/v1/users", status_code=201)
    async def create_user(body: schemas.NewUser, _: Principal = scope("admin")) -> dict[str, Any]:
        return accounts.create_user(body.name, body.role)

    @app.delete("/v1/users/{name}", status_code=204)
    async def delete_user(name: str, _: Principal = scope("admin")) -> Response:
        accounts.delete_user(name)
        grants.revoke_all(principal=name)
        return Response(status_code=204)

    @app.get("/v1/tokens")
    async def tokens(user: str | None = None, _: Principal = scope("admin")) -> list[dict[str, Any]]:
        return accounts.tokens(user)

    @app.post("/v1/tokens", status_code=201)
    async def create_token(body: schemas.NewToken, _: Principal = scope("admin")) -> dict[str, Any]:
        _, secret = accounts.create_token(body.user, body.scopes, body.expires_days,
                                          description=body.description)
        return {**accounts.token_info(secret), "token": secret}

    @app.delete("/v1/tokens/{token_id}", status_code=204)
    async def revoke_token(token_id: str, _: Principal = scope("admin")) -> Response:
        accounts.revoke_token(token_id)
        return Response(status_code=204)

    @app.post("/v1/tokens/info")
    async def token_info(token: Annotated[str, Body(embed=True, max_length=200)],
                         _: Principal = scope("admin")) -> dict[str, Any]:
        return accounts.token_info(token)

    @app.get("/v1/tokens/self")
    async def token_self(request: Request, _: Principal = scope("")) -> dict[str, Any]:
        return accounts.token_info(request.headers["authorization"][7:].strip())

    @app.post("/v1/invitations", status_code=201)
    async def invite(body: schemas.NewInvitation, _: Principal = scope("admin")) -> dict[str, Any]:
        from jupyter_fed.runner.invitations import make_invitation

        # scrypt: ~0.1 s of a core, kept off the event loop
        return await asyncio.to_thread(make_invitation, settings, accounts, body)

    @app.post("/v1/invitations/{inv_id}/redeem")
    async def redeem(inv_id: str, principal: Principal = scope("", pending=True)) -> dict[str, Any]:
        return accounts.redeem(inv_id, principal)

    # -- privacy ledger and audit -------------------------------------------------------------
    @app.get("/v1/budget")
    async def budget(principal: str | None = None, _: Principal = scope("admin")
                     ) -> list[dict[str, Any]]:
        return ledger.spending(principal)

    @app.get("/v1/budget/self")
    async def budget_self(principal: Principal = scope("")) -> list[dict[str, Any]]:
        return ledger.spending(principal.name)

    @app.get("/v1/audit")
    async def audit_rows(principal: str | None = None, dataset: str | None = None,
                         outcome: str | None = None, since: str | None = None,
                         limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
                         _: Principal = scope("admin")) -> list[dict[str, Any]]:
        return audit.query(principal=principal, dataset=dataset, outcome=outcome, since=since,
                           limit=limit)

    # -- grants and the request queue ---------------------------------------------------------
    @app.get("/v1/grants/self")
    async def my_grants(principal: Principal = scope("")) -> list[dict[str, Any]]:
        return grants.grants(principal.name)

    @app.get("/v1/grants")
    async def list_grants(user: str | None = None, dataset: str | None = None,
                          include_inactive: bool = False,
                          _: Principal = scope("register_dataset")) -> list[dict[str, Any]]:
        return grants.grants(user, dataset, include_inactive=include_inactive)

    @app.post("/v1/grants", status_code=201)
    async def grant(body: schemas.NewGrant, request: Request,
                    principal: Principal = scope("register_dataset")) -> dict[str, Any]:
        request.state.audit = {"dataset": body.dataset, "step": "grant"}
        return grants.grant(body.user, body.dataset, packages=body.packages,
                            epsilon_budget=body.epsilon_budget, expires_days=body.expires_days,
                            granted_by=principal.name, note=body.note)

    @app.delete("/v1/grants/{grant_id}", status_code=204)
    async def revoke_grant(grant_id: str, request: Request,
                           _: Principal = scope("register_dataset")) -> Response:
        request.state.audit = {"step": "revoke"}
        grants.revoke(grant_id)
        return Response(status_code=204)

    @app.post("/v1/requests", status_code=201)
    async def file_request(body: schemas.NewAccessRequest, request: Request,
                           principal: Principal = scope("read_catalog")) -> dict[str, Any]:
        request.state.audit = {"dataset": body.dataset, "step": "request"}
        return grants.request(grants.file_request(
            principal.name, body.dataset, packages=body.packages, epsilon=body.epsilon,
            reason=body.reason)["request_id"], principal.name)

    @app.get("/v1/requests/self")
    async def my_requests(principal: Principal = scope("")) -> list[dict[str, Any]]:
        return grants.requests(principal=principal.name, custodian=False)

    @app.post("/v1/requests/{request_id}/withdraw")
    async def withdraw(request_id: str, principal: Principal = scope("")) -> dict[str, Any]:
        return grants.withdraw(request_id, principal.name)

    @app.get("/v1/requests")
    async def list_requests(status: str | None = None, user: str | None = None,
                            _: Principal = scope("register_dataset")) -> list[dict[str, Any]]:
        return grants.requests(status=status, principal=user)

    @app.get("/v1/requests/{request_id}")
    async def get_request(request_id: str, _: Principal = scope("register_dataset")
                          ) -> dict[str, Any]:
        return grants.request(request_id)

    @app.post("/v1/requests/{request_id}/approve")
    async def approve(request_id: str, request: Request,
                      body: Annotated[schemas.Decision | None, Body()] = None,
                      principal: Principal = scope("register_dataset")) -> dict[str, Any]:
        body = body or schemas.Decision()
        changes = body.model_dump(exclude_unset=True)
        request.state.audit = {"dataset": grants.request(request_id)["dataset"],
                               "step": "approve"}
        return grants.approve(request_id, principal.name,
                              packages=changes.get("packages", ...),
                              epsilon=changes.get("epsilon", ...),
                              expires_days=body.expires_days, note=body.note)

    @app.post("/v1/requests/{request_id}/deny")
    async def deny(request_id: str, request: Request,
                   body: Annotated[schemas.Decision | None, Body()] = None,
                   principal: Principal = scope("register_dataset")) -> dict[str, Any]:
        request.state.audit = {"dataset": grants.request(request_id)["dataset"], "step": "deny"}
        return grants.deny(request_id, principal.name, (body or schemas.Decision()).note)

    add_code_routes(app, executor.custom.codes)
    app.add_middleware(Gate, accounts=accounts, audit=audit,
                       routes=RouteTable(ROUTE_SCOPES, PENDING_OK),
                       limits=GateLimits(max_body=settings.max_upload_bytes,
                                         max_anonymous_body=settings.max_anonymous_body_bytes,
                                         max_concurrent_uploads=settings.max_concurrent_uploads,
                                         body_timeout=settings.body_timeout))
    return app
