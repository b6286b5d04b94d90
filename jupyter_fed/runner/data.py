"""The runner's data layer: where datasets may live, what they must look like, and reading them.

This module and the packages' ``local.py`` are the only code that reads rows. Reports about a bad
dataset name columns and reasons, never cell values.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.errors import DatasetError, PermissionDenied
from jupyter_fed.wire.models import NAME_RE, ColumnInfo, DatasetInfo

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def resolve_under_roots(path: str | Path, roots: Sequence[Path]) -> Path:
    """Resolve ``path`` (symlinks included) and insist it lies under one of ``roots``."""
    raw = Path(path)
    if not raw.is_absolute() and roots:
        raw = roots[0] / raw
    try:
        real = raw.resolve(strict=True)
    except (FileNotFoundError, RuntimeError, OSError):
        raise DatasetError(f"no file at {path}", "give a path to an existing parquet or csv file") \
            from None
    for root in roots:
        if real.is_relative_to(root.resolve()):
            break
    else:
        raise PermissionDenied(f"{path} is outside the runner's data roots",
                               "move the file under a data root, or add a root with "
                               "`jupyter-fed runner init --data-root`")
    if not real.is_file():
        raise DatasetError(f"{path} is not a file", "give a parquet or csv file")
    if real.suffix.lower() not in FORMATS:
        raise DatasetError(f"{path} is neither parquet nor csv",
                           "convert the data to parquet (recommended) or csv")
    return real


def read_table(path: Path) -> pa.Table:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if FORMATS[path.suffix.lower()] == "parquet":
        return pq.read_table(path)
    return pacsv.read_csv(path)


def inspect(name: str, path: Path, id_columns: Sequence[str] = ()) -> DatasetInfo:
    """Infer the schema and check the data requirements; refuse with a per-column report."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from jupyter_fed.runner.store import now

    try:
        table = read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(f"could not read {path.name}: {type(exc).__name__}",
                           "check that the file is a valid parquet or csv file") from None
    problems: list[dict[str, str]] = []
    columns: list[ColumnInfo] = []
    for missing in sorted(set(id_columns) - set(table.column_names)):
        problems.append({"column": missing, "problem": "declared as an id column but absent"})
    for field in table.schema:
        col = table.column(field.name)
        is_id = field.name in id_columns
        if not NAME_RE.match(field.name):
            problems.append({"column": field.name, "problem": "name must start with a letter and use "
                             "only letters, digits, '-' and '_'"})
        if col.null_count:
            problems.append({"column": field.name, "problem": f"{col.null_count} null value(s)"})
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type) or \
            pa.types.is_boolean(field.type)
        if not numeric and not is_id:
            problems.append({"column": field.name, "problem": f"type {field.type} is not numeric "
                             "(only declared id columns may be non-numeric)"})
        elif pa.types.is_floating(field.type):
            bad = pc.sum(pc.invert(pc.is_finite(col))).as_py() or 0
            if bad:
                problems.append({"column": field.name, "problem": f"{bad} NaN or infinite value(s)"})
        columns.append(ColumnInfo(name=field.name, dtype=str(field.type),
                                  role="id" if is_id else "feature"))
    if problems:
        lines = "; ".join(f"{p['column']}: {p['problem']}" for p in problems)
        raise DatasetError(f"dataset {name!r} does not meet the data requirements: {lines}",
                           "impute nulls, encode text as numbers (or declare id columns), and "
                           "rename offending columns", details=problems)
    return DatasetInfo(name=name, format=FORMATS[path.suffix.lower()], num_rows=table.num_rows,
                       num_columns=table.num_columns, columns=columns, registered_at=now())


class TableCache:
    """A few recently used tables, keyed by file identity, so rounds do not re-read files."""

    def __init__(self, max_tables: int = 8) -> None:
        self._tables: OrderedDict[tuple[str, float, int], pa.Table] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_tables

    def get(self, path: Path) -> pa.Table:
        st = path.stat()
        key = (str(path), st.st_mtime, st.st_size)
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
        table = read_table(path)
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > self._max:
                self._tables.popitem(last=False)
        return table


class LoadedDataset:
    """The ``DatasetHandle`` a package step reads its rows through."""

    def __init__(self, info: DatasetInfo, table: pa.Table) -> None:
        self.info = info
        self._table = table

    @property
    def num_rows(self) -> int:
        return self._table.num_rows

    def to_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return (self._table.select(list(columns)) if columns else self._table).to_pandas()

    def to_numpy(self, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray:
        out = np.empty((self._table.num_rows, len(columns)), dtype=dtype)
        for j, c in enumerate(columns):
            out[:, j] = self._table.column(c).to_numpy()
        return out
