"""The worker's cache of decoded columns: hits between rounds, misses for a new file version."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jupyter_fed.runner.arrays import ArrayCache, CachedDataset
from jupyter_fed.runner.data import TableCache, inspect


def _write(path: Path, offset: float) -> None:
    pq.write_table(pa.table({"a": np.arange(100.0) + offset, "b": np.ones(100)}), path)


def _open(path: Path, tables: TableCache, arrays: ArrayCache) -> CachedDataset:
    return CachedDataset(inspect("d", path), path, tables, arrays)


def test_a_second_round_reads_nothing_and_gets_its_own_copy(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    _write(path, 0.0)
    tables, arrays = TableCache(), ArrayCache(10 * 2**20)

    first = _open(path, tables, arrays).to_numpy(["a", "b"])
    first *= 0  # a step normalising in place must not change what the next round reads
    again = _open(path, tables, arrays).to_numpy(["a", "b"])

    assert arrays.misses == 1 and arrays.hits == 1
    assert again[5, 0] == 5.0 and again.flags.writeable
    assert _open(path, tables, arrays).to_numpy(["a"], np.float64).dtype == np.float64
    assert arrays.misses == 2  # other columns or dtype: another block


def test_a_replaced_file_is_a_new_version(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    _write(path, 0.0)
    tables, arrays = TableCache(), ArrayCache(10 * 2**20)
    assert _open(path, tables, arrays).to_numpy(["a"])[0, 0] == 0.0

    _write(path, 1000.0)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    assert _open(path, tables, arrays).to_numpy(["a"])[0, 0] == 1000.0


def test_the_cache_keeps_to_its_byte_budget(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    _write(path, 0.0)
    block = 100 * 4  # 100 rows, one float32 column
    tables, arrays = TableCache(), ArrayCache(2 * block)
    handle = _open(path, tables, arrays)
    for cols in (["a"], ["b"], ["a"], ["b"]):
        handle.to_numpy(cols)
    assert arrays.nbytes <= 2 * block and arrays.hits == 2
    handle.to_numpy(["a", "b"])  # 800 bytes: over the budget, made but not kept
    assert arrays.nbytes <= 2 * block
