"""One streaming pass over a dataset: moments of its rows and of each binary column's 1s.

Memory is one block plus ``O(p²)`` for the totals and ``O(b·p)`` for ``b`` conditioned binary
columns (their count, means and sums of squares, computed per block as matrix products
``Bᵀ X`` and ``Bᵀ (X - c)²``): quadratic in the number of columns at most. Blocks are cut small
enough for a wide table that one block stays near :data:`BLOCK_BYTES`. The row sets (the rows
read, and of those which have each binary column at 1) are packed 8 rows a byte for the
differencing check.

Which columns are binary comes from the registered schema as agreed across the session's
runners (``binary``); a column registered binary whose values are no longer all 0 or 1 is an
error naming it. Datasets registered before kinds were recorded learn it from the values.

On a Dask-backed dataset (``handle.partitioned``) the workers compute each partition's partials
(:func:`_partial`), and the runner merges them in row order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from jupyter_fed.contracts import Expr, filter_columns, filter_mask
from jupyter_fed.errors import DatasetError
from jupyter_fed.packages.base import DatasetHandle, StepContext
from jupyter_fed.packages.stats._moments import BitWriter, CondMoments, Moments, Stats

__all__ = ["BLOCK_BYTES", "Scan", "block_rows", "scan"]

BLOCK_BYTES = 32 << 20
"""Target size of one block of rows (float64) read at a time."""

_CHUNK = 64
"""Binary columns conditioned on per matrix product (bounds the ``rows × b`` indicator)."""


@dataclass
class Scan:
    """Exact statistics of one query, and the row sets they describe."""

    stats: Stats
    rows: np.ndarray
    """Packed bitmap of the rows the filter kept."""
    cond_rows: dict[str, np.ndarray]
    """Binary column → packed bitmap of the kept rows where it is 1."""


def block_rows(batch_rows: int, width: int) -> int:
    """Rows per block: at most ``batch_rows``, and a block of ``width`` columns near 32 MB."""
    return max(256, min(int(batch_rows), BLOCK_BYTES // (8 * max(width, 1))))


class _Acc:
    """Running totals of one pass (the same for the streaming and the Dask paths)."""

    def __init__(self, p: int, candidates: list[int]) -> None:
        self.total = Moments.empty(p)
        self.binary = np.ones(p, dtype=bool)
        self.cand = list(candidates)
        self.cn = np.zeros(len(candidates))
        self.cmean = np.zeros((len(candidates), p))
        self.css = np.zeros((len(candidates), p))
        self.kept = BitWriter()
        self.bits = [BitWriter() for _ in candidates]

    def add(self, n_rows: int, mask: np.ndarray, part: tuple[Moments, np.ndarray, np.ndarray,
                                                           np.ndarray, np.ndarray, list[np.ndarray]]
            ) -> None:
        moments, binary, cn, cmean, css, ones = part
        self.kept.add(mask)
        self.total = self.total.merge(moments)
        self.binary &= binary
        both = (self.cn > 0) & (cn > 0)
        n = self.cn + cn
        safe = np.where(n > 0, n, 1.0)[:, None]
        delta = cmean - self.cmean
        mean = np.where((cn > 0)[:, None], self.cmean + delta * (cn[:, None] / safe), self.cmean)
        ss = self.css + css + np.where(both[:, None], delta * delta *
                                       (self.cn * cn)[:, None] / safe, 0.0)
        self.cmean = np.where((self.cn == 0)[:, None], cmean, mean)
        self.css = np.where((self.cn == 0)[:, None], css, ss)
        self.cn = n
        for writer, where in zip(self.bits, ones, strict=True):
            writer.add(where)

    def result(self, columns: list[str], registered: list[str] | None) -> Scan:
        p = len(columns)
        if registered is None:  # learnt from the values (datasets registered before kinds)
            binary = [c for j, c in enumerate(columns) if self.binary[j]]
        else:
            broken = [c for c in registered if not self.binary[columns.index(c)]]
            if broken:
                raise DatasetError(f"column(s) {', '.join(broken)} were registered as binary (0/1) "
                                   "but now hold other values", "register the dataset again so "
                                   "its schema matches the file")
            binary = list(registered)
        keep = [i for i, j in enumerate(self.cand) if columns[j] in binary]
        stats = Stats(list(columns), self.total, np.full(p, self.total.n), binary,
                      {columns[self.cand[i]]: CondMoments(float(self.cn[i]), self.cmean[i].copy(),
                                                          self.css[i].copy()) for i in keep})
        return Scan(stats, self.kept.finish(),
                    {columns[self.cand[i]]: self.bits[i].finish() for i in keep})


def _partial(block: np.ndarray, first_row: int, *, p: int, read: list[str],
             row_filter: Expr | None, candidates: list[int]
             ) -> tuple[int, np.ndarray, tuple[Any, ...]]:
    """One block: rows, kept-row mask, and (moments, binary flags, per-candidate statistics)."""
    if row_filter is None:
        mask = np.ones(len(block), dtype=bool)
        rows = block[:, :p]
    else:
        mask = filter_mask(row_filter, {c: block[:, i] for i, c in enumerate(read)})
        rows = block[mask, :p]
    binary = np.all((rows == 0) | (rows == 1), axis=0)
    b = len(candidates)
    cn, cmean, css = np.zeros(b), np.zeros((b, p)), np.zeros((b, p))
    ones: list[np.ndarray] = []
    if b and len(rows):
        centre = rows.mean(axis=0)
        sq = (rows - centre) ** 2
        for start in range(0, b, _CHUNK):
            idx = candidates[start:start + _CHUNK]
            ind = (rows[:, idx] == 1).astype(np.float64)  # rows × chunk
            n = ind.sum(axis=0)
            s1 = ind.T @ rows
            s2 = ind.T @ sq
            mean = s1 / np.where(n > 0, n, 1.0)[:, None]
            cn[start:start + len(idx)] = n
            cmean[start:start + len(idx)] = mean
            css[start:start + len(idx)] = np.maximum(s2 - n[:, None] * (mean - centre) ** 2, 0.0)
    for j in candidates:
        where = np.zeros(len(block), dtype=bool)
        where[mask] = rows[:, j] == 1
        ones.append(where)
    return len(block), mask, (Moments.of(rows), binary, cn, cmean, css, ones)


def scan(ctx: StepContext, handle: DatasetHandle, columns: list[str], row_filter: Expr | None,
         candidates: list[str], batch_rows: int, binary: list[str] | None = None) -> Scan:
    """Stream ``columns`` (plus any the filter reads) and accumulate the moments.

    Parameters
    ----------
    columns
        The statistics' columns, in order.
    row_filter
        Rows to keep; ``None`` keeps all.
    candidates
        Binary columns to condition on.
    batch_rows
        Rows per block (lowered for wide tables); the result does not depend on it beyond
        rounding.
    binary
        The columns treated as binary (registered and agreed); ``None`` learns them from values.
    """
    extra = [c for c in filter_columns(row_filter) if c not in columns] if row_filter else []
    read = columns + extra
    p = len(columns)
    cand = [columns.index(c) for c in candidates if binary is None or c in binary]
    acc = _Acc(p, cand)
    fn = functools.partial(_partial, p=p, read=read, row_filter=row_filter, candidates=cand)
    rows = block_rows(batch_rows, len(read) + len(cand))
    seen, expected = 0, max(handle.info.num_rows, 1)
    if handle.partitioned:  # masks travel back from the Dask workers packed 8 rows a byte
        blocks = (_unpack(*out) for out in handle.map_blocks(read, _packed(fn), rows))
    else:
        blocks = handle.map_blocks(read, fn, rows)
    for n, mask, part in blocks:
        ctx.progress(0.95 * seen / expected, "reading rows")
        seen += n
        acc.add(n, mask, part)
    return acc.result(columns, binary)


def _packed(fn: Any) -> Any:
    return functools.partial(_packed_partial, fn=fn)


def _packed_partial(block: np.ndarray, first_row: int, *, fn: Any) -> tuple[Any, ...]:
    """What a Dask worker sends back: masks packed 8 rows a byte."""
    n, mask, (moments, binary, cn, cmean, css, ones) = fn(block, first_row)
    return n, np.packbits(mask), (moments, binary, cn, cmean, css, [np.packbits(o) for o in ones])


def _unpack(n: int, mask: np.ndarray, part: tuple[Any, ...]) -> tuple[int, np.ndarray, Any]:
    moments, binary, cn, cmean, css, ones = part
    return n, np.unpackbits(mask, count=n).astype(bool), (
        moments, binary, cn, cmean, css, [np.unpackbits(o, count=n).astype(bool) for o in ones])
