"""``DatasetHandle.batches``: one shuffled order per (seed, epoch), the same in memory and
streamed (parquet row groups, csv, Dask partitions), every row once, memory bounded by the
buffer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from jupyter_fed.runner import batches
from jupyter_fed.runner.arrays import ArrayCache, CachedDataset
from jupyter_fed.runner.data import TableCache, inspect

ROWS = 40_000
COLS = ["a", "b", "y"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("batches")
    rng = np.random.default_rng(0)
    table = pa.table({"a": np.arange(ROWS, dtype=np.float64), "b": rng.integers(0, 9, ROWS),
                      "y": (rng.random(ROWS) < 0.3).astype(np.int64)})
    pq.write_table(table, root / "d.parquet", row_group_size=2_500)
    pacsv.write_csv(table, root / "d.csv")
    return {"parquet": root / "d.parquet", "csv": root / "d.csv"}


def _handles(path: Path) -> tuple[CachedDataset, CachedDataset]:
    info = inspect("d", path)
    return (CachedDataset(info, path, TableCache(), ArrayCache(1 << 30)),
            CachedDataset(info, path, TableCache(), ArrayCache(0)))


def _all(handle: CachedDataset, **kw: object) -> list[np.ndarray]:
    return list(handle.batches(COLS, 256, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("buffer_rows", [9_000, 100_000])
def test_in_memory_and_streamed_give_the_same_batches(files, fmt, buffer_rows) -> None:
    memory, streamed = _handles(files[fmt])
    assert memory.fits_in_memory(COLS) and not streamed.fits_in_memory(COLS)

    for epoch in range(2):
        a = _all(memory, seed=7, epoch=epoch, buffer_rows=buffer_rows)
        b = _all(streamed, seed=7, epoch=epoch, buffer_rows=buffer_rows)

        assert [len(x) for x in a] == [len(x) for x in b] == [256] * (ROWS // 256) + [ROWS % 256]
        np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
        assert a[0].dtype == np.float32


def test_every_row_once_a_new_order_each_epoch_and_row_groups_mixed(files) -> None:
    _, streamed = _handles(files["parquet"])

    orders = [np.concatenate(_all(streamed, seed=3, epoch=e, buffer_rows=9_000))[:, 0]
              for e in range(2)]
    again = np.concatenate(_all(streamed, seed=3, epoch=0, buffer_rows=9_000))[:, 0]

    for order in orders:
        np.testing.assert_array_equal(np.sort(order), np.arange(ROWS))
    np.testing.assert_array_equal(orders[0], again)
    assert not np.array_equal(orders[0], orders[1])
    # the first batch draws from several row groups (2,500 rows each), not one
    assert len(np.unique(orders[0][:256] // 2_500)) >= 3


def test_a_dataset_within_the_buffer_is_one_uniform_permutation(files) -> None:
    memory, _ = _handles(files["parquet"])
    order = batches.row_order(batches.unit_rows(memory), ROWS, seed=5, epoch=0)
    rng = batches.epoch_rng(5, 0)
    rng.permutation(len(batches.unit_rows(memory)))

    # filled in the (random) row-group order, then permuted at once
    units = batches.epoch_rng(5, 0).permutation(ROWS // 2_500)
    filled = np.concatenate([np.arange(u * 2_500, (u + 1) * 2_500) for u in units])
    np.testing.assert_array_equal(order, filled[rng.permutation(ROWS)])


def test_file_order_without_a_seed(files) -> None:
    memory, streamed = _handles(files["csv"])

    a, b = np.concatenate(_all(memory)), np.concatenate(_all(streamed))

    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:, 0], np.arange(ROWS))


def test_the_buffer_bounds_what_is_held(files) -> None:
    # Prepare: count the rows the shuffle holds at once, through the pieces it is fed
    _, streamed = _handles(files["parquet"])
    held = []
    real = batches.shuffle_pieces

    def spy(pieces, capacity, rng):  # type: ignore[no-untyped-def]
        held.append(capacity)
        return real(pieces, capacity, rng)

    batches.shuffle_pieces = spy  # type: ignore[assignment]
    try:
        _all(streamed, seed=1, epoch=0, buffer_rows=9_000)
    finally:
        batches.shuffle_pieces = real  # type: ignore[assignment]

    assert held == [9_000]


def test_a_dask_backed_dataset_is_shuffled_by_partitions(files, tmp_path) -> None:
    pytest.importorskip("distributed")
    from jupyter_fed.runner import dask_backend
    from jupyter_fed.runner.data import LoadedDataset
    from jupyter_fed.wire.models import DatasetBackend

    info = inspect("d", files["csv"])
    info.backend = DatasetBackend(name="dask", blocksize=50_000)
    handle = LoadedDataset(info, None, files["csv"])
    try:
        assert handle.partitioned and not handle.fits_in_memory(COLS)
        count = dask_backend.partition_count(files["csv"], "csv", COLS, {}, info.backend)
        first = np.concatenate(list(handle.batches(COLS, 500, seed=2, epoch=0,
                                                   buffer_rows=9_000)))[:, 0]
        again = np.concatenate(list(handle.batches(COLS, 500, seed=2, epoch=0,
                                                   buffer_rows=9_000)))[:, 0]
    finally:
        dask_backend.close_clients()

    assert count > 3
    np.testing.assert_array_equal(np.sort(first), np.arange(ROWS))
    np.testing.assert_array_equal(first, again)
