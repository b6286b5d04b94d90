"""Registering datasets: path checks, data requirements, default policy, declared bounds, views.

A registration may declare public bounds per column (``--bounds age=0:120``): DP releases clip to
them at no privacy cost, so custodians who know their ranges get accurate results. A registration
may also be a *view*: a row filter over the file (see ``views.py``). Every dataset on the same
resolved file (or the same object URI) shares one budget group — its privacy budget and its
differencing store.

A dataset is a file under one of the runner's data roots or an object under one of its allowed
URI prefixes (``s3://bucket/prefix/``; see ``storage.py``), read with the runner's own
credentials.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path

from jupyter_fed.errors import ConfigError, ConflictError, NotFoundError
from jupyter_fed.runner import data
from jupyter_fed.runner.policy import DatasetPolicy, budget_group
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.storage import DataPath, source
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire import DatasetInfo, DatasetRegistration


def register_dataset(settings: RunnerSettings, store: RunnerStore, body: DatasetRegistration,
                     policy: DatasetPolicy | None = None) -> DatasetInfo:
    """Check and record a dataset (shared by the REST route and the CLI).

    A ``backend`` (``dask``) is checked here (the extra is installed) and stored with the dataset's
    info; ``DatasetInfo`` never serialises it, nor the view's filter or the budget group, so the
    catalog shows neither infrastructure nor the path.
    """
    if store.get_dataset(body.name) is not None:
        raise ConflictError(f"a dataset named {body.name!r} already exists on this runner",
                            "choose another name, or remove the old one first")
    path = data.resolve_dataset(body.path, settings)
    backend = body.backend if body.backend is not None and body.backend.name != "pyarrow" else None
    if backend is not None:
        from jupyter_fed.runner import dask_backend

        dask_backend.check_available()
        if body.view:
            raise ConfigError("a view cannot be read through a Dask backend",
                              "register the filtered rows as their own file, or drop the backend")
    policy = policy or DatasetPolicy()
    rows = None
    if body.view:
        from jupyter_fed.runner.views import view_rows

        rows = view_rows(body.view, _file_columns(path))
    info = data.inspect(body.name, path, body.id_columns, policy.min_count, rows)
    _declare_bounds(info, body)
    info.description, info.tags, info.backend = body.description, list(body.tags), backend
    info.view, info.budget_group = body.view, budget_group(path)
    stored = info.model_dump(mode="json")
    if backend is not None:
        stored["backend"] = backend.model_dump(mode="json")
    stored["view"], stored["budget_group"] = info.view, info.budget_group
    try:
        store.put_dataset(body.name, str(path), stored, policy.model_dump())
    except sqlite3.IntegrityError:  # registered meanwhile by another request
        raise ConflictError(f"a dataset named {body.name!r} already exists on this runner",
                            "choose another name, or remove the old one first") from None
    return info


def _file_columns(path: DataPath) -> list[str]:
    import pyarrow.parquet as pq

    if data.FORMATS[path.suffix.lower()] == "parquet":
        try:
            with source(path) as src:
                return list(pq.ParquetFile(src).schema_arrow.names)
        except OSError as exc:
            raise data.unreadable(path, exc) from None
    return list(data.read_table(path).column_names)


def _declare_bounds(info: DatasetInfo, body: DatasetRegistration) -> None:
    """Attach declared bounds to their columns; a bound on an unknown or id column is an error."""
    by_name = {c.name: c for c in info.columns}
    for column, (lo, hi) in body.bounds.items():
        col = by_name.get(column)
        if col is None or col.role == "id":
            what = "is an id column" if col is not None else "is not a column"
            raise ConfigError(f"bounds: {column!r} {what} of dataset {body.name!r}",
                              "declare bounds for numeric columns only",
                              details=[{"field": f"bounds.{column}", "error": what}])
        col.bounds = (float(lo), float(hi))


def parse_bounds(items: list[str], file: Path | None = None) -> dict[str, tuple[float, float]]:
    """``COLUMN=LOW:HIGH`` items (and a file of them, or JSON ``{column: [low, high]}``)."""
    import json

    lines = list(items)
    if file is not None:
        text = Path(file).read_text()
        if text.lstrip().startswith("{"):
            try:
                found = json.loads(text)
                return {**{str(k): (float(v[0]), float(v[1])) for k, v in found.items()},
                        **parse_bounds(items)}
            except (ValueError, TypeError, IndexError, KeyError):
                raise ConfigError(f"--bounds-file {file}: not a JSON object of "
                                  "{column: [low, high]}", "fix the file") from None
        lines += [ln.strip() for ln in text.splitlines() if ln.strip() and not
                  ln.strip().startswith("#")]
    out: dict[str, tuple[float, float]] = {}
    for item in lines:
        column, sep, rng = item.partition("=")
        low, colon, high = rng.partition(":")
        try:
            if not (sep and colon):
                raise ValueError
            out[column.strip()] = (float(low), float(high))
        except ValueError:
            raise ConfigError(f"--bounds {column.strip() or item!r}: expected COLUMN=LOW:HIGH",
                              "write e.g. --bounds age=0:120") from None
    return out


def no_such_dataset(name: str, runner: str) -> NotFoundError:
    """The one answer for a dataset that does not exist *or* is not the caller's to see: the
    same words either way, so the answer is no oracle for names granted to others."""
    return NotFoundError(f"no dataset named {name!r} on runner {runner!r}",
                         "list the catalog with client.datasets(), or ask the custodian for "
                         "access with client.request_access()")


def load_dataset(settings: RunnerSettings, store: RunnerStore, name: str
                 ) -> tuple[DatasetInfo, DataPath]:
    """A registered dataset's info (with its runner-side view and budget group) and file.

    The location is checked again against the data roots and allowed prefixes as they are now;
    an object on object storage is not fetched here (the step that reads it will).
    """
    row = store.dataset_row(name)
    if row is None:
        raise no_such_dataset(name, settings.name)
    path, stored = row
    info = _parsed_info(stored).model_copy()  # a copy: the budget group is set on it below
    resolved = data.resolve_dataset(path, settings, reach=False)
    info.budget_group = info.budget_group or budget_group(resolved)
    return info, resolved


@functools.lru_cache(maxsize=256)
def _parsed_info(stored: str) -> DatasetInfo:
    """A dataset's info from its stored JSON, parsed once per distinct text: every step looks up
    each of its datasets, and a step of a tree-growing session lasts a few milliseconds. Keyed
    by the text itself, so a changed entry is parsed afresh."""
    return DatasetInfo.model_validate(json.loads(stored))
