"""What crosses the network between coordinator and runner: JSON models and the tensor codec."""

from __future__ import annotations

from jupyter_fed.wire.models import (
    NAME_RE,
    TERMINAL_STATUSES,
    ColumnInfo,
    DatasetInfo,
    DatasetRegistration,
    ErrorBody,
    Health,
    SessionStatus,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from jupyter_fed.wire.tensors import decode, encode

__all__ = [
    "NAME_RE",
    "TERMINAL_STATUSES",
    "ColumnInfo",
    "DatasetInfo",
    "DatasetRegistration",
    "ErrorBody",
    "Health",
    "SessionStatus",
    "TaskSpec",
    "TaskState",
    "TaskStatus",
    "decode",
    "encode",
]
