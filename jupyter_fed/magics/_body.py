"""Reading a ``%%federate`` cell: its YAML/JSON body and its dataset references."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from jupyter_fed.magics._errors import CellConfigError

__all__ = ["as_int", "common_columns", "names", "parse_body", "short_list", "split_ref"]


def parse_body(text: str) -> dict[str, Any]:
    """The cell body as a mapping: JSON when it starts with ``{``, YAML otherwise.

    Raises
    ------
    CellConfigError
        With the line and the parser's reason when the body does not parse or is not a mapping.
    """
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CellConfigError(f"the cell body is not valid JSON: line {exc.lineno}, column "
                                  f"{exc.colno}: {exc.msg}", "fix the JSON, or write YAML") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            reason = getattr(exc, "problem", None) or str(exc)
            raise CellConfigError(f"the cell body is not valid YAML: {where}{reason}",
                                  "indent nested keys consistently and write 'key: value' pairs"
                                  ) from None
    if not isinstance(data, dict):
        raise CellConfigError(f"the cell body must be a mapping of settings, got {type(data).__name__}",
                              "write 'key: value' lines, e.g. 'target: y'")
    return data


def split_ref(ref: str) -> tuple[str | None, str]:
    """``"runner/name"`` → ``("runner", "name")``; a bare ``"name"`` → ``(None, "name")``."""
    runner, sep, name = ref.strip().rpartition("/")
    return (runner or None) if sep else None, name


def names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    raise CellConfigError(f"{what} must be a comma-separated string or a list of dataset names",
                          f"write e.g. {what}: [train_a, train_b]")


def common_columns(catalog: Iterable[Mapping[str, Any]], refs: Iterable[str]) -> list[str]:
    """Columns that every referenced dataset has, in the first dataset's order.

    Parameters
    ----------
    catalog
        Records with ``runner``, ``name`` and ``columns`` (``client.datasets()`` rows).
    refs
        ``"name"`` or ``"runner/name"`` references; a bare name matches it on every runner.
    """
    rows = list(catalog)
    sets: list[list[str]] = []
    for ref in refs:
        runner, name = split_ref(ref)
        sets += [list(r["columns"]) for r in rows
                 if r["name"] == name and (runner is None or r["runner"] == runner)]
    if not sets:
        return []
    shared = set(sets[0]).intersection(*sets[1:])
    return [c for c in sets[0] if c in shared]


def as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CellConfigError(f"{what} must be an integer, got {value!r}", f"write e.g. {what}: 3")
    return value


def short_list(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, …, {names[-1]}"
