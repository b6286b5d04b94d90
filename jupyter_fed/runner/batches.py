"""Training batches in bounded memory: a seeded shuffle that reads a dataset one unit at a time.

A training step asks for its rows in shuffled batches, epoch after epoch
(``DatasetHandle.batches``). Reading the whole dataset to draw one permutation of its rows needs
memory for all of it; this module draws the order from what can be read a piece at a time, and
draws it the same way whether the rows are on disk or already in memory, so one seed gives one
batch order — and one trained model — either way.

The method, for epoch ``e`` of seed ``s`` (every draw from ``numpy.random.default_rng([s, e])``):

1. **Units.** The dataset is cut into the units its format can read alone: a parquet file's row
   groups; a Dask-backed dataset's partitions; a csv file (which has no random access) or a
   view is a single unit, read in file order. The epoch visits the units in a random order
   (``rng.permutation``).
2. **Pieces.** Each unit is cut, in order, into pieces of :data:`PIECE_ROWS` rows (its last
   piece shorter).
3. **Shuffle buffer** of ``B = min(buffer_rows, rows)`` rows. The first ``B`` rows to arrive fill
   it. Each later piece of ``k`` rows (``k <= B``; a longer piece goes in parts of ``B``)
   swaps with ``k`` buffer slots drawn without replacement (``rng.choice(B, k,
   replace=False)``): the rows in those slots leave, in the order drawn, and the piece takes
   their places. When the units run out, the buffer leaves in a random order
   (``rng.permutation``). A dataset of at most ``buffer_rows`` rows is thus shuffled uniformly.
4. **Batches**: the rows, in the order they leave, cut into batches of ``batch_rows`` rows (the
   last may be shorter).

Memory: the buffer, one unit being decoded (a parquet row group, or a Dask partition, and at
most :data:`~jupyter_fed.runner.dask_backend.WINDOW` partitions in flight) and one batch —
independent of the dataset's size. A dataset whose rows fit the worker's in-memory budget is read
once, kept in the worker's array cache, and the same algorithm run on row numbers instead of rows
gives the same order (the draws depend only on the pieces' lengths).

How well it mixes: a row leaves the buffer after a geometric number of swaps, so rows of one unit
spread over about ``B`` neighbouring positions of the epoch, and units come in a new random order
every epoch. Row groups small against the buffer (the default parquet writer's million-row groups
are not: write with ``row_group_size`` a tenth of the buffer or less) give an order close to a
uniform shuffle; a csv file mixes only within the buffer's reach — convert large csv files to
parquet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["BUFFER_BYTES", "PIECE_ROWS", "buffer_rows_for", "epoch_rng", "read", "row_order",
           "shuffle_pieces", "shuffled_batches", "unit_pieces", "unit_rows"]

PIECE_ROWS = 8192
"""Rows per piece a unit is cut into before it enters the shuffle buffer."""
BUFFER_BYTES = 64 * 2**20
"""The shuffle buffer's default size, in bytes of decoded rows (``shuffle_buffer_mb``)."""


def buffer_rows_for(width: int, itemsize: int, budget: int = BUFFER_BYTES) -> int:
    """Rows of ``width`` columns of ``itemsize`` bytes that fit ``budget`` bytes (at least one
    piece's worth, so the buffer is never smaller than what enters it at once)."""
    return max(PIECE_ROWS, budget // max(width * itemsize, 1))


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of every draw of one epoch's order."""
    return np.random.default_rng([int(seed) % 2**63, int(epoch)])


def unit_pieces(blocks: Iterable[np.ndarray], piece_rows: int = PIECE_ROWS
                ) -> Iterator[np.ndarray]:
    """One unit's rows, arriving as blocks of any size, as pieces of exactly ``piece_rows`` rows
    (the last shorter)."""
    from jupyter_fed.runner.streaming import rebatch

    yield from rebatch(iter(blocks), piece_rows, 0)


def shuffle_pieces(pieces: Iterable[np.ndarray], capacity: int, rng: np.random.Generator
                   ) -> Iterator[np.ndarray]:
    """Rows (or row numbers) through a shuffle buffer of ``capacity`` rows (see the module doc).

    ``pieces`` may be blocks of rows (rows × columns) or of row numbers (1-d): the draws depend
    only on their lengths, so both give the same order.
    """
    buf: np.ndarray | None = None
    held = 0
    for piece in pieces:
        if buf is None:
            buf = np.empty((capacity, *piece.shape[1:]), dtype=piece.dtype)
        while len(piece):
            if held < capacity:
                take = min(capacity - held, len(piece))
                buf[held:held + take] = piece[:take]
                held, piece = held + take, piece[take:]
                continue
            k = min(len(piece), capacity)
            slots = rng.choice(capacity, size=k, replace=False)
            out = buf[slots]
            buf[slots] = piece[:k]
            piece = piece[k:]
            yield out
    if buf is not None and held:
        yield buf[:held][rng.permutation(held)]


def _cut(pieces: Iterable[np.ndarray], batch_rows: int) -> Iterator[np.ndarray]:
    from jupyter_fed.runner.streaming import rebatch

    yield from rebatch(iter(pieces), batch_rows, 0)


def row_order(unit_rows: Sequence[int], capacity: int, seed: int, epoch: int) -> np.ndarray:
    """The epoch's order of the rows of a dataset whose units hold ``unit_rows`` rows, as row
    numbers: what :func:`shuffled_batches` gives when it reads the units themselves."""
    rng = epoch_rng(seed, epoch)
    starts = np.concatenate([[0], np.cumsum(unit_rows)]).astype(np.int64)
    order = rng.permutation(len(unit_rows))
    pieces = (np.arange(starts[u] + a, min(starts[u] + a + PIECE_ROWS, starts[u + 1]))
              for u in order for a in range(0, int(unit_rows[u]), PIECE_ROWS))
    out = list(shuffle_pieces(pieces, max(1, min(capacity, int(starts[-1]))), rng))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def shuffled_batches(units: Callable[[np.ndarray], Iterable[Iterable[np.ndarray]]], count: int,
                     rows: int, capacity: int, batch_rows: int, seed: int, epoch: int,
                     convert: Callable[[np.ndarray], Any] = lambda b: b) -> Iterator[np.ndarray]:
    """The epoch's batches of a dataset of ``count`` units and ``rows`` rows: ``units(order)``
    reads the units in that order, each as its rows' blocks in file order; ``convert`` turns a
    block into what the buffer holds (the requested dtype)."""
    rng = epoch_rng(seed, epoch)
    order = rng.permutation(count)
    pieces = (convert(piece) for unit in units(order) for piece in unit_pieces(unit))
    yield from _cut(shuffle_pieces(pieces, max(1, min(capacity, rows)), rng), batch_rows)


# -- reading a dataset's units ----------------------------------------------------------------

def unit_rows(handle: Any) -> list[int]:
    """Rows of each unit of a handle's rows (see the module doc): parquet row groups for a whole
    parquet file, else one unit."""
    from jupyter_fed.runner.streaming import FORMATS

    n = int(handle.num_rows)
    path = handle.path
    if not handle.whole_file or path is None or FORMATS.get(path.suffix.lower()) != "parquet":
        return [n]
    sizes = _row_groups(path)
    return sizes if sum(sizes) == n else [n]


def _row_groups(path: Any) -> list[int]:
    import pyarrow.parquet as pq

    from jupyter_fed.runner.storage import source

    with source(path) as src:
        pf = pq.ParquetFile(src)
        try:
            meta = pf.metadata
            return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        finally:
            pf.close()


def _parquet_unit(path: Any, columns: list[str], group: int) -> Iterator[np.ndarray]:
    """One row group's rows as float64 blocks (a local file, or an object on object storage)."""
    import pyarrow.parquet as pq

    from jupyter_fed.runner.storage import source
    from jupyter_fed.runner.streaming import PRE_BUFFER, block

    with source(path) as src:
        pf = pq.ParquetFile(src, pre_buffer=PRE_BUFFER)
        try:
            for batch in pf.iter_batches(batch_size=PIECE_ROWS, row_groups=[group],
                                         columns=columns):
                yield block(batch.select(columns), len(columns))
        finally:
            pf.close()


def read(handle: Any, columns: list[str], batch_rows: int, *, seed: int | None, epoch: int,
         buffer_rows: int | None, dtype: Any) -> Iterator[np.ndarray]:
    """``LoadedDataset.batches``: in memory when the rows fit the handle's budget, else streamed
    (see the module doc); ``seed=None``: in file order."""
    from jupyter_fed.runner.streaming import FORMATS

    dtype = np.dtype(dtype)
    width = len(columns)
    capacity = buffer_rows or buffer_rows_for(width, dtype.itemsize, handle.shuffle_buffer_bytes)
    if handle.fits_in_memory(columns, dtype):
        block = handle.block(columns, dtype)
        if seed is None:
            for start in range(0, len(block), batch_rows):
                yield np.array(block[start:start + batch_rows], copy=True)
            return
        order = row_order(unit_rows(handle), capacity, seed, epoch)
        for start in range(0, len(order), batch_rows):
            yield block[order[start:start + batch_rows]]
        return
    convert: Callable[[np.ndarray], np.ndarray] = lambda b: b.astype(dtype, copy=False)  # noqa: E731
    if seed is None:
        for b in handle.iter_batches(columns, batch_rows):
            yield convert(b)
        return
    rows = int(handle.num_rows)
    if handle.partitioned:
        from jupyter_fed.runner import dask_backend

        backend, fmt = handle.info.backend, FORMATS[handle.path.suffix.lower()]
        count = dask_backend.partition_count(handle.path, fmt, columns, handle._dtypes(), backend)

        def units(order: np.ndarray) -> Iterator[Iterable[np.ndarray]]:
            for part in dask_backend.partition_blocks(handle.path, fmt, columns, handle._dtypes(),
                                                      backend, order=[int(u) for u in order]):
                yield (part,)
    elif FORMATS[handle.path.suffix.lower()] == "parquet":
        count = len(_row_groups(handle.path))

        def units(order: np.ndarray) -> Iterator[Iterable[np.ndarray]]:
            for u in order:
                yield _parquet_unit(handle.path, columns, int(u))
    else:
        count = 1

        def units(order: np.ndarray) -> Iterator[Iterable[np.ndarray]]:
            yield handle.iter_batches(columns, PIECE_ROWS)
    yield from shuffled_batches(units, count, rows, capacity, batch_rows, seed, epoch, convert)
