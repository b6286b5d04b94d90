"""Checking a session's configuration against the catalog schema of the datasets it will read.

Runs at the coordinator when clients join, before anything is dispatched, so a misspelt target or
a regression column used as a class label is refused in the notebook with the field the user
wrote — not reported by every runner after round 1. It reads only the catalog (names, types,
coarse column kinds), never rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Problem", "check_columns", "columns_text", "label_problems", "supervised_problems"]


@dataclass(frozen=True)
class Problem:
    """One reason a dataset cannot serve a session: the config field, and what is wrong."""

    field: str
    error: str

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "error": self.error}


def _columns(info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(info.get("columns") or [])


def columns_text(info: Mapping[str, Any], limit: int = 12) -> str:
    """``x0, x1, …, y (31 columns)``: enough to spot a typo without flooding the message."""
    names = [c["name"] for c in _columns(info)]
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit - 1])}, …, {names[-1]} ({len(names)} columns)"


def check_columns(field: str, wanted: Iterable[str | int], info: Mapping[str, Any], where: str,
                  *, allow_id: bool = False, index_base: int | None = None) -> list[Problem]:
    """Problems with columns named (or indexed) by config field ``field`` in dataset ``where``.

    ``index_base`` says how integer entries count (0 or 1); ``None`` means names only.
    """
    cols = _columns(info)
    by_name = {c["name"]: c for c in cols}
    problems = []
    for item in wanted:
        if isinstance(item, int) and not isinstance(item, bool) and index_base is not None:
            if not index_base <= item < len(cols) + index_base:
                problems.append(Problem(field, f"column index {item} is out of range for {where} "
                                        f"({len(cols)} columns, counted from {index_base})"))
                continue
            item = cols[item - index_base]["name"]
        if item not in by_name:
            problems.append(Problem(field, f"{field} {item!r} is not a column of {where} "
                                    f"(columns: {columns_text(info)})"))
        elif not allow_id and by_name[item].get("role") == "id":
            problems.append(Problem(field, f"{field} {item!r} is an id column of {where}; id "
                                    "columns identify rows and are never used as numbers"))
    return problems


def label_problems(field: str, column: str, info: Mapping[str, Any], where: str,
                   output_size: int) -> list[Problem]:
    """A classification target must hold labels ``0..k-1`` with ``k <= output_size``.

    Decided from the column's registered kind; datasets registered before kinds were recorded,
    and ``integer`` columns (whose labels may include a rare class), are left to the runner.
    """
    col = next((c for c in _columns(info) if c["name"] == column), None)
    if col is None or col.get("kind") is None:
        return []
    kind, classes = col["kind"], col.get("classes")
    if kind == "numeric":
        return [Problem(field, f"{field} {column!r} of {where} holds non-integer values, not "
                        "class labels 0..k-1; use ml_task.type 'regression', or encode the classes")]
    if kind in ("label", "binary") and classes is not None and classes > output_size:
        return [Problem("model_config.model.params.output_size",
                        f"{field} {column!r} of {where} has {classes} classes but "
                        f"model_config.model.params.output_size is {output_size}")]
    return []


def supervised_problems(info: Mapping[str, Any], runner: str, predictors: Sequence[str],
                        target: str) -> list[Problem]:
    """Predictors and target of a supervised package against one dataset's catalog entry."""
    where = f"{runner}/{info['name']}"
    return [*check_columns("data_config.predictors", predictors, info, where),
            *check_columns("data_config.target", [target], info, where)]


def dataset_label(runner: str, dataset: str) -> str:
    return f"{runner}/{dataset}"


def unique(problems: Sequence[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
