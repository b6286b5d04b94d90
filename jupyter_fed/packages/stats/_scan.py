"""One streaming pass over a dataset: moments of the selected rows and of each binary column's 1s.

Memory is one batch plus ``O(columns²)`` per conditioned block, whatever the number of rows; the
row sets (which rows the filter kept, and of those which have each binary column at 1) are packed
8 rows a byte for the differencing check. Which columns are binary is learnt on the way: a column
stops being a candidate at the first value other than 0 or 1, and its block is dropped.

On a Dask-backed dataset (``handle.partitioned``) the workers compute each partition's moments and
row bitmaps (:func:`_partial`), and the runner merges them in row order (:func:`_scan_partials`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from jupyter_fed.contracts import Expr, filter_columns, filter_mask
from jupyter_fed.packages.base import DatasetHandle, StepContext
from jupyter_fed.packages.stats._moments import BitWriter, Moments, Stats

__all__ = ["Scan", "scan"]


@dataclass
class Scan:
    """Exact statistics of one query, and the row sets they describe."""

    stats: Stats
    rows: np.ndarray
    """Packed bitmap of the rows the filter kept."""
    cond_rows: dict[str, np.ndarray]
    """Binary column → packed bitmap of the kept rows where it is 1."""


def scan(ctx: StepContext, handle: DatasetHandle, columns: list[str], row_filter: Expr | None,
         candidates: list[str], batch_rows: int) -> Scan:
    """Stream ``columns`` (plus any the filter reads) and accumulate the moments.

    Parameters
    ----------
    columns
        The statistics' columns, in order.
    row_filter
        Rows to keep; ``None`` keeps all.
    candidates
        Columns to condition on if they turn out to be binary.
    batch_rows
        Rows per block; the result does not depend on it beyond rounding.
    """
    extra = [c for c in filter_columns(row_filter) if c not in columns] if row_filter else []
    read = columns + extra
    if getattr(handle, "partitioned", False):
        return _scan_partials(ctx, handle, columns, read, row_filter, candidates, batch_rows)
    p = len(columns)
    total = Moments.empty(p)
    binary = np.ones(p, dtype=bool)
    blocks = {columns.index(c): (Moments.empty(p), BitWriter()) for c in candidates}
    kept = BitWriter()
    seen, expected = 0, max(handle.info.num_rows, 1)
    for block in handle.iter_batches(read, batch_rows):
        ctx.progress(0.95 * seen / expected, "reading rows")
        seen += len(block)
        if row_filter is None:
            mask = np.ones(len(block), dtype=bool)
            rows = block[:, :p]
        else:
            mask = filter_mask(row_filter, {c: block[:, i] for i, c in enumerate(read)})
            rows = block[mask, :p]
        kept.add(mask)
        total = total.merge(Moments.of(rows))
        binary &= np.all((rows == 0) | (rows == 1), axis=0)
        for j in list(blocks):
            if not binary[j]:
                del blocks[j]
                continue
            ones = rows[:, j] == 1
            moments, bits = blocks[j]
            where = np.zeros(len(block), dtype=bool)
            where[mask] = ones
            bits.add(where)
            blocks[j] = (moments.merge(Moments.of(rows[ones])), bits)
    stats = Stats(list(columns), total, np.full(p, total.n),
                  [c for j, c in enumerate(columns) if binary[j]],
                  {columns[j]: m for j, (m, _) in sorted(blocks.items())})
    return Scan(stats, kept.finish(), {columns[j]: b.finish() for j, (_, b) in sorted(blocks.items())})


def _scan_partials(ctx: StepContext, handle: Any, columns: list[str], read: list[str],
                   row_filter: Expr | None, candidates: list[str], batch_rows: int) -> Scan:
    """:func:`scan` from per-partition partials merged in row order (equal up to rounding)."""
    p = len(columns)
    total = Moments.empty(p)
    binary = np.ones(p, dtype=bool)
    blocks = {columns.index(c): (Moments.empty(p), BitWriter()) for c in candidates}
    kept = BitWriter()
    seen, expected = 0, max(handle.info.num_rows, 1)
    fn = functools.partial(_partial, p=p, read=read, row_filter=row_filter, candidates=list(blocks))
    for n, mask, moments, part_binary, ones in handle.map_blocks(read, fn, batch_rows):
        ctx.progress(0.95 * seen / expected, "reading rows")
        seen += n
        kept.add(np.unpackbits(mask, count=n).astype(bool))
        total = total.merge(moments)
        binary &= part_binary
        for j in list(blocks):
            if not binary[j]:
                del blocks[j]
                continue
            part_moments, bits = ones[j]
            merged, writer = blocks[j]
            writer.add(np.unpackbits(bits, count=n).astype(bool))
            blocks[j] = (merged.merge(part_moments), writer)
    stats = Stats(list(columns), total, np.full(p, total.n),
                  [c for j, c in enumerate(columns) if binary[j]],
                  {columns[j]: m for j, (m, _) in sorted(blocks.items())})
    return Scan(stats, kept.finish(), {columns[j]: b.finish() for j, (_, b) in sorted(blocks.items())})


def _partial(block: np.ndarray, first_row: int, *, p: int, read: list[str], row_filter: Expr | None,
             candidates: list[int]) -> tuple[int, np.ndarray, Moments, np.ndarray,
                                             dict[int, tuple[Moments, np.ndarray]]]:
    """One partition: rows, kept-row bitmap, moments, binary flags, per-candidate blocks."""
    if row_filter is None:
        mask = np.ones(len(block), dtype=bool)
        rows = block[:, :p]
    else:
        mask = filter_mask(row_filter, {c: block[:, i] for i, c in enumerate(read)})
        rows = block[mask, :p]
    binary = np.all((rows == 0) | (rows == 1), axis=0)
    ones: dict[int, tuple[Moments, np.ndarray]] = {}
    for j in candidates:
        if binary[j]:
            where = np.zeros(len(block), dtype=bool)
            where[mask] = rows[:, j] == 1
            ones[j] = (Moments.of(rows[rows[:, j] == 1]), np.packbits(where))
    return len(block), np.packbits(mask), Moments.of(rows), binary, ones
