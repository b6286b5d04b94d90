"""JSON messages between coordinator and runner, validated on both ends."""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
"""Dataset, column and runner names: start with a letter; letters, digits, ``-``, ``_``."""


def check_name(v: str) -> str:
    """Field validator for dataset, runner and user names."""
    if not NAME_RE.match(v):
        raise ValueError("must start with a letter and use only letters, digits, '-' and '_'")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Model):
    code: str
    message: str
    hint: str = ""
    details: Any = None


class Hello(_Model):
    """The runner's proof of identity for ``GET /v1/health?nonce=`` (see ``wire/hello.py``)."""

    nonce: str
    certificate: str = Field(max_length=8192)
    signature: str = Field(max_length=512)


class Health(_Model):
    status: str = "ok"
    name: str
    version: str
    packages: list[str] = []
    hello: Hello | None = None
    ready: bool | None = None
    """A warm worker is waiting for steps; a coordinator starts a session's first step when every
    runner of the session is ready (None from runners that do not say)."""


ColumnKind = Literal["binary", "label", "integer", "numeric", "id"]


class ColumnInfo(_Model):
    """One column of the catalog: its name, type and the coarse facts a session is checked against.

    ``kind`` and ``classes`` are decided at registration so that a session can be refused before
    it starts (a classification target that holds no class labels, more classes than outputs),
    without any row leaving: ``classes`` is shown only when every label ``0..classes-1`` is held by
    at least the dataset's small-count threshold of rows, so it never names a rare value.
    """

    name: str
    dtype: str
    role: str = Field("feature", description="'feature' or 'id' (identifier, not used as a number)")
    kind: ColumnKind | None = Field(None, description="'binary' (only 0/1), 'label' (class labels "
                                    "0..classes-1, none rare), 'integer', 'numeric', or 'id'; None "
                                    "for datasets registered before kinds were recorded")
    classes: int | None = Field(None, description="number of class labels of a 'label' or "
                                "'binary' column")
    bounds: tuple[float, float] | None = Field(None, description="public bounds the custodian "
                                               "declared for the column's values (lower, upper): "
                                               "DP releases clip to them at no privacy cost")


class DatasetBackend(_Model):
    """How the runner reads a dataset's rows: pyarrow in the runner (default) or a Dask cluster.

    Runner-side only: it is stored with the dataset and never shown in the catalog.
    """

    name: Literal["pyarrow", "dask"] = "pyarrow"
    scheduler: str | None = Field(default=None, description="dask: address of a Dask scheduler, e.g. "
                                  "tcp://10.0.0.5:8786, whose workers see the dataset's file at the "
                                  "same path; None starts a small in-process LocalCluster")
    blocksize: int | str | None = Field(default=None, description="dask: bytes per partition, e.g. "
                                        "'64MB' or 1048576; None keeps Dask's default")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data  # `backend: dask`

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^(tcp|tls)://[^\s/]+$", v):
            raise ValueError("must be a Dask scheduler address tcp://host:port or tls://host:port")
        return v

    @field_validator("blocksize")
    @classmethod
    def _blocksize(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int) and v < 1024:
            raise ValueError("must be at least 1024 bytes")
        if isinstance(v, str) and not re.match(r"^\s*\d+(\.\d+)?\s*[kKmMgG]?i?[bB]?\s*$", v):
            raise ValueError("must be a size such as '64MB' or a number of bytes")
        return v


MAX_DESCRIPTION = 4000
"""Characters in a dataset's description: the catalog is read by every builder, often."""
MAX_TAGS, MAX_TAG = 32, 64
"""How many tags a dataset may carry, and characters per tag."""

Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG)]


class DatasetRegistration(_Model):
    """What a custodian sends to register a file as a dataset.

    Text fields are bounded: every catalog listing returns them to every builder, so one
    registration must not be able to make the catalog megabytes long.
    """

    name: str = Field(description="unique on this runner")
    path: str = Field(min_length=1, max_length=4096, description="parquet or csv file under one "
                      "of the runner's data roots")
    description: str = Field("", max_length=MAX_DESCRIPTION)
    tags: list[Tag] = Field([], max_length=MAX_TAGS)
    id_columns: list[str] = Field([], max_length=10_000, description="identifier columns exempt "
                                  "from the numeric rule")
    backend: DatasetBackend | None = Field(default=None, description="how the runner reads the rows: "
                                           "'dask' or {name: dask, scheduler: tcp://…}; default "
                                           "pyarrow in the runner's own process")
    bounds: dict[str, tuple[float, float]] = Field(default_factory=dict, description="public "
                                                   "bounds per column, {column: [lower, upper]}: "
                                                   "declared, so DP releases use them for free")
    view: str | None = Field(None, max_length=2000, description="a row filter over the file "
                             "('age >= 18 AND region == 2'): the dataset is those rows only, and "
                             "shares its privacy budget and differencing checks with every other "
                             "dataset on the same file")

    _name = field_validator("name")(classmethod(lambda cls, v: check_name(v)))

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for column, (lo, hi) in v.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"bounds of {column!r} must be finite numbers with lower < upper")
        return v


class DatasetInfo(_Model):
    """Catalog entry: everything about a dataset except its rows."""

    name: str
    description: str = ""
    tags: list[str] = []
    format: str
    num_rows: int
    num_columns: int
    columns: list[ColumnInfo]
    registered_at: datetime
    backend: DatasetBackend | None = Field(default=None, exclude=True, description="runner-side "
                                           "only: read from the runner's store, never serialised, "
                                           "so the catalog shows no infrastructure")
    view: str | None = Field(default=None, exclude=True, description="runner-side only: the row "
                             "filter of a view over a file")
    budget_group: str | None = Field(default=None, exclude=True, description="runner-side only: "
                                     "the file's budget and differencing key")


class SessionStatus(StrEnum):
    """A session's life: created → pending (waiting for clients) → running → an end state.

    ``interrupted`` (a runner was unreachable when the coordinator restarted) is resumable.
    """

    created = "created"
    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    interrupted = "interrupted"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({SessionStatus.completed, SessionStatus.failed,
                               SessionStatus.cancelled, SessionStatus.interrupted})
"""States in which a session does nothing more until someone acts (resume an interrupted one)."""


class TaskState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (TaskState.succeeded, TaskState.failed, TaskState.cancelled)


class TaskSpec(_Model):
    """One step of one package on one silo's datasets.

    ``task_id`` is chosen by the coordinator so that a retried POST is idempotent; arrays the step
    needs (the global model) travel beside this JSON as safetensors.
    """

    task_id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,200}$")
    session_id: str
    round: int = Field(ge=0)
    package: str
    step: str
    datasets: dict[str, str] = Field(description="role -> dataset name, e.g. {'train': 'silo0'}")
    params: dict[str, Any] = {}


class TaskStatus(_Model):
    task_id: str
    state: TaskState
    progress: float = 0.0
    message: str = ""
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    error: ErrorBody | None = None
    outputs: dict[str, Any] | None = Field(None, description="JSON part of the result: metrics, counts")
    has_tensors: bool = False
    elapsed: float | None = Field(None, description="seconds spent inside the package step")


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None``: JSON has no NaN, browsers
    reject it, and an undefined metric (AUC on one class) is honestly 'no value'."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
