"""A simulated silo's rows: one partition of the user's dataset, read as a runner reads a file.

The partition is an in-memory pyarrow table behind the runner's own
:class:`~jupyter_fed.runner.data.LoadedDataset`, so a package's ``local.py`` sees exactly the
values, dtypes and errors it would see at a runner holding that partition as a parquet file;
decoded columns are kept between rounds as a runner's worker keeps them. The catalog entry is
decided by the same rules as at registration (``column_kind``, with the policy's small-count
threshold), so joins are checked as in a real federation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.errors import ConfigError, DatasetError
from jupyter_fed.runner.data import LoadedDataset, column_kind, read_table
from jupyter_fed.wire.models import NAME_RE, ColumnInfo, DatasetInfo

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["PartitionDataset", "as_table", "describe"]


def as_table(data: pd.DataFrame | pa.Table | str | Path) -> pa.Table:
    """The dataset as one arrow table: a DataFrame, a table, or a parquet/csv file."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if not path.is_file():
            raise ConfigError(f"no dataset file at {path}", "give a parquet or csv file")
        if path.suffix.lower() not in (".parquet", ".pq", ".csv"):
            raise ConfigError(f"{path.name} is neither parquet nor csv", "convert it to parquet")
        return read_table(path)
    if hasattr(data, "columns"):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise ConfigError(f"cannot simulate on a {type(data).__name__}",
                      "pass a pandas DataFrame, a pyarrow Table or a parquet/csv path")


def describe(name: str, table: pa.Table, min_count: int = 10) -> DatasetInfo:
    """The catalog entry a runner would make for ``table`` registered as ``name``."""
    import pyarrow as pa

    columns, problems = [], []
    for field in table.schema:
        col = table.column(field.name)
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type) or \
            pa.types.is_boolean(field.type)
        if not NAME_RE.match(field.name):
            problems.append(f"column {field.name!r}: name must start with a letter and use only "
                            "letters, digits, '-' and '_'")
        elif col.null_count:
            problems.append(f"column {field.name!r}: null values")
        elif not numeric:
            problems.append(f"column {field.name!r}: type {field.type} is not numeric")
        kind, classes = column_kind(col, min_count) if numeric and not col.null_count else \
            ("id", None)
        columns.append(ColumnInfo(name=field.name, dtype=str(field.type), kind=kind,
                                  classes=classes))
    if problems:
        raise DatasetError("the dataset does not meet a runner's data requirements: "
                           + "; ".join(problems[:8]),
                           "encode text as numbers, impute or drop nulls, rename the columns")
    return DatasetInfo(name=name, format="parquet", num_rows=table.num_rows,
                       num_columns=table.num_columns, columns=columns,
                       registered_at=datetime.now(UTC), budget_group=f"simulated:{name}")


class PartitionDataset(LoadedDataset):
    """A ``DatasetHandle`` over one partition held in memory, its decoded columns cached."""

    def __init__(self, info: DatasetInfo, table: pa.Table) -> None:
        super().__init__(info, table)
        self._blocks: dict[tuple[tuple[str, ...], str], np.ndarray] = {}

    def to_numpy(self, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray:
        key = (tuple(columns), np.dtype(dtype).str)
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = super().to_numpy(columns, dtype)
        return block.copy()  # the step's own, as at a runner: it may write to it

    def aligned(self, prl_session_id: str) -> LoadedDataset:
        raise ConfigError("vertical sessions (record linkage) are not simulated",
                          "simulate horizontal packages (ffnet, glm, gbm, …)")
