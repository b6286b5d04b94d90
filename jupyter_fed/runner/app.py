"""The runner's HTTP surface: routes only. Every route but health needs a scoped bearer token.

No route returns rows: the catalog carries schemas and counts, tasks return what their package's
``local.py`` chose to return (parameters, statistics, aggregates), under the dataset's policy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from jupyter_fed._version import __version__
from jupyter_fed.errors import ConfigError, FedError, NotFoundError, PayloadTooLarge
from jupyter_fed.packages import field_errors, package_names
from jupyter_fed.runner import schemas
from jupyter_fed.runner.accounts import Accounts, Principal
from jupyter_fed.runner.audit import AuditLog
from jupyter_fed.runner.executor import Executor
from jupyter_fed.runner.policy import DatasetPolicy, Ledger
from jupyter_fed.runner.registry import register_dataset
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire import DatasetInfo, DatasetRegistration, Health, TaskSpec, TaskStatus

log = logging.getLogger("jupyter_fed.runner")

ROUTE_SCOPES: dict[tuple[str, str], str | None] = {
    ("GET", "/v1/health"): None,
    ("GET", "/v1/datasets"): "read_catalog",
    ("GET", "/v1/datasets/{name}"): "read_catalog",
    ("POST", "/v1/datasets"): "register_dataset",
    ("DELETE", "/v1/datasets/{name}"): "register_dataset",
    ("GET", "/v1/datasets/{name}/policy"): "read_catalog",
    ("PUT", "/v1/datasets/{name}/policy"): "register_dataset",
    ("POST", "/v1/tasks"): "create_session",
    ("GET", "/v1/tasks/{task_id}"): "read_session",
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
}
"""Which scope each route needs: None = no token, "" = any valid token. Documented in README."""


class BodyLimit:
    """Reads and counts the request body before the app sees it, so neither a declared length nor
    a chunked body can get more than ``max_bytes`` into the runner."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages, total = [], 0
        while True:
            message = await receive()
            messages.append(message)
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                err = PayloadTooLarge(f"request body over {self.max_bytes} bytes",
                                      "send smaller payloads or raise max_upload_bytes")
                await _error(err)(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        replay = iter(messages)

        async def buffered() -> Any:
            return next(replay, None) or await receive()

        await self.app(scope, buffered, send)


def _error(exc: FedError) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status)


def _warmup(threads: int) -> None:
    """Import the ML stack in the background so the first round does not pay for it."""
    try:
        import torch

        torch.set_num_threads(threads)
        # One tiny training step initialises autograd and the optimiser kernels.
        net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        torch.nn.functional.cross_entropy(net(torch.zeros(8, 4)), torch.zeros(8, dtype=torch.long)
                                          ).backward()
        opt.step()
    except ImportError:  # pragma: no cover - the runner still serves analytics packages
        pass


def create_app(settings: RunnerSettings, on_ready: Callable[[], None] | None = None) -> FastAPI:
    """Build the runner's FastAPI app around its settings, store and executor."""
    store = RunnerStore(settings.db_path)
    accounts, ledger, audit = Accounts(store), Ledger(store), AuditLog(store)
    executor = Executor(settings, store, ledger)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warmup:
            threading.Thread(target=_warmup, args=(settings.torch_threads,), daemon=True).start()
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
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)

    @app.exception_handler(FedError)
    async def _fed_error(request: Request, exc: FedError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"),
                    "error": e["msg"]} for e in exc.errors()]
        lines = "; ".join(f"{d['field']}: {d['error']}" for d in details)
        return _error(ConfigError(f"invalid request: {lines}", "fix the fields named", details=details))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"code": "internal_error", "message": "the runner hit an internal error",
                             "hint": "see the runner's log"}, status_code=500)

    @app.middleware("http")
    async def _limits_and_audit(request: Request, call_next: Any) -> Response:
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            declared = settings.max_upload_bytes + 1
        if declared > settings.max_upload_bytes:
            return _error(PayloadTooLarge(f"request body over {settings.max_upload_bytes} bytes",
                                          "send smaller payloads or raise max_upload_bytes"))
        response = await call_next(request)
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is not None or response.status_code in (401, 403):
            extra = getattr(request.state, "audit", {})
            audit.record(principal=principal.name if principal else None,
                         token_id=principal.token_id if principal else None,
                         method=request.method, path=request.url.path,
                         status=response.status_code,
                         bytes_out=int(response.headers.get("content-length") or 0), **extra)
        return response

    def scope(name: str, *, pending: bool = False) -> Any:
        def dep(request: Request) -> Principal:
            principal = accounts.authenticate(request.headers.get("authorization"),
                                              allow_pending=pending)
            request.state.principal = principal
            if name:
                principal.require(name)
            return principal
        return Depends(dep)

    def dataset_or_404(name: str) -> tuple[str, dict[str, Any]]:
        row = store.get_dataset(name)
        if row is None:
            raise NotFoundError(f"no dataset named {name!r} on runner {settings.name!r}",
                                "list the catalog with client.datasets()")
        return row

    # -- catalog ------------------------------------------------------------------------------
    @app.get("/v1/health", response_model=Health)
    async def health() -> Health:
        return Health(name=settings.name, version=__version__, packages=package_names())

    @app.get("/v1/datasets", response_model=list[DatasetInfo])
    async def list_datasets(_: Principal = scope("read_catalog")) -> list[dict[str, Any]]:
        return store.list_datasets()

    @app.get("/v1/datasets/{name}", response_model=DatasetInfo)
    async def get_dataset(name: str, _: Principal = scope("read_catalog")) -> dict[str, Any]:
        return dataset_or_404(name)[1]

    @app.post("/v1/datasets", response_model=DatasetInfo, status_code=201)
    async def register(body: DatasetRegistration, request: Request,
                       _: Principal = scope("register_dataset")) -> DatasetInfo:
        request.state.audit = {"dataset": body.name}
        return register_dataset(settings, store, body)

    @app.delete("/v1/datasets/{name}", status_code=204)
    async def delete_dataset(name: str, _: Principal = scope("register_dataset")) -> Response:
        dataset_or_404(name)
        store.delete_dataset(name)
        return Response(status_code=204)

    @app.get("/v1/datasets/{name}/policy", response_model=DatasetPolicy)
    async def get_policy(name: str, _: Principal = scope("read_catalog")) -> DatasetPolicy:
        dataset_or_404(name)
        return DatasetPolicy.model_validate(store.get_policy(name) or {})

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
                     principal: Principal = scope("create_session")) -> TaskStatus:
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
        return executor.submit(task, payload, principal)

    @app.get("/v1/tasks/{task_id}", response_model=TaskStatus)
    async def task_status(task_id: str, wait: Annotated[float, Query(ge=0, le=60)] = 0,
                          principal: Principal = scope("read_session")) -> TaskStatus:
        executor.check_owner(task_id, principal)
        return await executor.wait(task_id, wait)

    @app.get("/v1/tasks/{task_id}/result")
    async def task_result(task_id: str, principal: Principal = scope("read_model")) -> Response:
        executor.check_owner(task_id, principal)
        return Response(executor.result(task_id), media_type="application/octet-stream")

    @app.post("/v1/tasks/{task_id}/cancel", response_model=TaskStatus)
    async def cancel(task_id: str, principal: Principal = scope("create_session")) -> TaskStatus:
        executor.check_owner(task_id, principal)
        return executor.cancel(task_id)

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

        return make_invitation(settings, accounts, body)

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

    return app
