"""JSON messages between coordinator and runner, validated on both ends."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
"""Dataset, column and runner names: start with a letter; letters, digits, ``-``, ``_``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Model):
    code: str
    message: str
    hint: str = ""
    details: Any = None


class Health(_Model):
    status: str = "ok"
    name: str
    version: str
    packages: list[str] = []


class ColumnInfo(_Model):
    name: str
    dtype: str
    role: str = Field("feature", description="'feature' or 'id' (identifier, not used as a number)")


class DatasetRegistration(_Model):
    """What a custodian sends to register a file as a dataset."""

    name: str = Field(description="unique on this runner")
    path: str = Field(description="parquet or csv file under one of the runner's data roots")
    description: str = ""
    tags: list[str] = []
    id_columns: list[str] = Field([], description="identifier columns exempt from the numeric rule")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("must start with a letter and use only letters, digits, '-' and '_'")
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
