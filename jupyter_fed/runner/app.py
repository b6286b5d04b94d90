"""The runner's HTTP surface: routes only. Every route but health needs a scoped bearer token.

No route returns rows: the catalog carries schemas and counts, tasks return what their package's
``local.py`` chose to return (parameters, statistics, aggregates).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from jupyter_fed._version import __version__
from jupyter_fed.errors import ConfigError, ConflictError, FedError, NotFoundError, PayloadTooLarge
from jupyter_fed.packages import package_names
from jupyter_fed.packages._config import field_errors
from jupyter_fed.runner import data
from jupyter_fed.runner.auth import Principal, authenticate
from jupyter_fed.runner.executor import Executor
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire import DatasetInfo, DatasetRegistration, Health, TaskSpec, TaskStatus

log = logging.getLogger("jupyter_fed.runner")


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
    executor = Executor(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import threading

        if settings.warmup:
            threading.Thread(target=_warmup, args=(settings.torch_threads,), daemon=True).start()
        if on_ready is not None:
            on_ready()
        yield
        executor.shutdown()
        store.close()

    app = FastAPI(title=f"jupyter-fed runner {settings.name}", version=__version__,
                  lifespan=lifespan)
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

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"code": "internal_error", "message": "the runner hit an internal error",
                             "hint": "see the runner's log"}, status_code=500)

    @app.middleware("http")
    async def _audit(request: Request, call_next: Any) -> Response:
        max_bytes = settings.max_upload_bytes
        if int(request.headers.get("content-length") or 0) > max_bytes:
            return _error(PayloadTooLarge(f"request body over {max_bytes} bytes",
                                          "send smaller payloads or raise max_upload_bytes"))
        response = await call_next(request)
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is not None or response.status_code == 401:
            audit = getattr(request.state, "audit", {})
            store.audit(principal=principal.name if principal else None,
                        token_id=principal.token_id if principal else None,
                        method=request.method, path=request.url.path, status=response.status_code,
                        bytes_out=int(response.headers.get("content-length") or 0), **audit)
        return response

    def scope(name: str) -> Any:
        def dep(request: Request) -> Principal:
            principal = authenticate(store, request.headers.get("authorization"))
            request.state.principal = principal
            principal.require(name)
            return principal
        return Depends(dep)

    @app.get("/v1/health", response_model=Health)
    async def health() -> Health:
        return Health(name=settings.name, version=__version__, packages=package_names())

    @app.get("/v1/datasets", response_model=list[DatasetInfo])
    async def list_datasets(_: Principal = scope("read_catalog")) -> list[dict[str, Any]]:
        return store.list_datasets()

    @app.get("/v1/datasets/{name}", response_model=DatasetInfo)
    async def get_dataset(name: str, _: Principal = scope("read_catalog")) -> dict[str, Any]:
        row = store.get_dataset(name)
        if row is None:
            raise NotFoundError(f"no dataset named {name!r} on runner {settings.name!r}",
                                "list the catalog with client.datasets()")
        return row[1]

    @app.post("/v1/datasets", response_model=DatasetInfo, status_code=201)
    async def register(body: DatasetRegistration, request: Request,
                       _: Principal = scope("register_dataset")) -> DatasetInfo:
        request.state.audit = {"dataset": body.name}
        return register_dataset(settings, store, body)

    @app.post("/v1/tasks", response_model=TaskStatus, status_code=202)
    async def submit(request: Request, spec: Annotated[str, Form()],
                     tensors: Annotated[UploadFile | None, File()] = None,
                     principal: Principal = scope("create_session")) -> TaskStatus:
        try:
            task = TaskSpec.model_validate_json(spec)
        except ValidationError as exc:
            details = field_errors(exc, "spec")
            raise ConfigError("invalid task: " + "; ".join(f"{d['field']}: {d['error']}"
                                                           for d in details),
                              "fix the fields named", details=details) from None
        request.state.audit = {"dataset": json.dumps(task.datasets), "package": task.package,
                               "step": task.step}
        payload = await tensors.read() if tensors is not None else None
        return executor.submit(task, payload, principal.name)

    @app.get("/v1/tasks/{task_id}", response_model=TaskStatus)
    async def task_status(task_id: str, wait: Annotated[float, Query(ge=0, le=60)] = 0,
                          _: Principal = scope("read_session")) -> TaskStatus:
        return await executor.wait(task_id, wait)

    @app.get("/v1/tasks/{task_id}/result")
    async def task_result(task_id: str, _: Principal = scope("read_model")) -> Response:
        return Response(executor.result(task_id), media_type="application/octet-stream")

    @app.post("/v1/tasks/{task_id}/cancel", response_model=TaskStatus)
    async def cancel(task_id: str, _: Principal = scope("create_session")) -> TaskStatus:
        return executor.cancel(task_id)

    return app


def register_dataset(settings: RunnerSettings, store: RunnerStore,
                     body: DatasetRegistration) -> DatasetInfo:
    """Check and record a dataset (shared by the REST route and the CLI)."""
    if store.get_dataset(body.name) is not None:
        raise ConflictError(f"a dataset named {body.name!r} already exists on this runner",
                            "choose another name, or remove the old one first")
    path = data.resolve_under_roots(body.path, settings.data_roots)
    info = data.inspect(body.name, path, body.id_columns)
    info.description, info.tags = body.description, list(body.tags)
    store.put_dataset(body.name, str(path), info.model_dump(mode="json"))
    return info
