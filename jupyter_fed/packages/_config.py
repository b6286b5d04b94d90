"""Turning pydantic validation errors into one ``ConfigError`` that names every bad field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from jupyter_fed.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append({"field": field, "error": msg})
    return out


def parse_config(model: type[M], data: Mapping[str, Any] | None, what: str) -> M:
    """Validate ``data`` against ``model``; raise ``ConfigError`` listing ``field: reason`` lines."""
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as exc:
        details = field_errors(exc, what)
        lines = "; ".join(f"{d['field']}: {d['error']}" for d in details)
        raise ConfigError(f"invalid {what or 'session'}: {lines}",
                          f"fix the field(s) named above{' in ' + what if what else ''}",
                          details=details) from None
