"""What crosses the network between coordinator and runner: JSON models and the tensor codec."""

from __future__ import annotations

from jupyter_fed.wire.models import (
    NAME_RE,
    ColumnInfo,
    DatasetInfo,
    DatasetRegistration,
    ErrorBody,
    Health,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from jupyter_fed.wire.tensors import decode, encode

__all__ = [
    "NAME_RE",
    "ColumnInfo",
    "DatasetInfo",
    "DatasetRegistration",
    "ErrorBody",
    "Health",
    "TaskSpec",
    "TaskState",
    "TaskStatus",
    "decode",
    "encode",
]
