"""What the secure-aggregation tests share besides fixtures: the runners' names, the silos' rows.

A module of its own (not ``conftest``), so that test modules import it by a unique name whatever
other test folders pytest collects in the same run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

NAMES = tuple(f"silo{i}" for i in range(10))


def silo_rows(root: Path, i: int, columns: list[str]) -> np.ndarray:
    """``columns`` of silo ``i``'s training rows, as float64."""
    table = pq.read_table(root / f"train_silo{i}.parquet", columns=columns)
    return np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in columns])
