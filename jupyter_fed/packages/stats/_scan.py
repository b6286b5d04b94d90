"""One streaming pass over a dataset: moments of the selected rows and of each binary column's 1s.

Memory is one batch plus ``O(columns²)`` per conditioned block, whatever the number of rows; the
row sets (which rows the filter kept, and of those which have each binary column at 1) are packed
8 rows a byte for the differencing check. Which columns are binary is learnt on the way: a column
stops being a candidate at the first value other than 0 or 1, and its block is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

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
