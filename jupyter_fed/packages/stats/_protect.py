"""What a silo withholds from its exact statistics so that no small group of rows shows through.

Binary columns define groups of rows, and exact moments describe those groups: the entry
``XᵀX[b, x]`` is the sum of ``x`` over the rows where ``b`` is 1, and a conditioned block on ``b``
gives the count, means and sums of squares of those rows. One minimum ``m`` (the release minimum,
``max(k, attributes + 5)``, see :func:`jupyter_fed.privacy.release_minimum`) applies to every
group, before anything leaves the runner:

1. a binary column whose 1s or 0s number fewer than ``m`` is withheld entirely — otherwise its
   mean and cross-products give that small group's sums;
2. a pair of binary columns with a small cell (``b∧c``, ``b∧¬c``, ``¬b∧c`` or ``¬b∧¬c`` under
   ``m`` rows) has its joint count withheld, and each column's entries in the other's
   conditioned block (they are the same cell);
3. a conditioned block is sent only if it and its complement each hold at least ``m`` rows;
4. blocks carry no cross-products, so no three-way cell is ever described.

Empty groups are not small: a sum over no rows reveals nothing. Withheld values are NaN, which the
merge and every statistic carry through as "not defined".
"""

from __future__ import annotations

import numpy as np

from jupyter_fed.packages.stats._moments import CondMoments, Moments, Stats

__all__ = ["protect", "small_pairs"]


def _small(count: np.ndarray, k: int) -> np.ndarray:
    return (count > 0.5) & (count < k - 0.5)


def small_pairs(mo: Moments, idx: np.ndarray, k: int) -> np.ndarray:
    """For binary columns ``idx`` of a block: which pairs have a cell of 1..k-1 rows.

    The diagonal says whether a column's own 1s or 0s form a small group. Entries that are
    already NaN are never flagged (there is nothing left to withhold).
    """
    m, mean = mo.n, mo.mean[idx]
    ones = np.rint(m * mean)
    both = np.rint(mo.m2[np.ix_(idx, idx)] + m * np.outer(mean, mean))
    with np.errstate(invalid="ignore"):
        cells = (both, ones[:, None] - both, ones[None, :] - both,
                 m - ones[:, None] - ones[None, :] + both)
        return np.logical_or.reduce([_small(c, k) for c in cells])


def _withhold(mo: Moments, flags: np.ndarray, idx: np.ndarray) -> None:
    """NaN whole columns (flagged diagonal) and single entries (flagged off-diagonal), in place."""
    for a, col in enumerate(idx):
        if flags[a, a]:
            mo.mean[col] = np.nan
            mo.m2[col, :] = np.nan
            mo.m2[:, col] = np.nan
    rows, cols = np.nonzero(flags & ~np.eye(len(idx), dtype=bool))
    mo.m2[idx[rows], idx[cols]] = np.nan


def protect(stats: Stats, minimum: int) -> tuple[Stats, list[str]]:
    """Apply rules 1-4 to one silo's raw statistics; returns what may be sent and warnings.

    Parameters
    ----------
    stats
        Exact statistics of the rows (not modified).
    minimum
        Fewest rows in any group the release describes (the release minimum).
    """
    notes: list[str] = []
    m = minimum
    total = Moments(stats.total.n, stats.total.mean.copy(), stats.total.m2.copy())
    idx = np.array([stats.columns.index(b) for b in stats.binary], dtype=int)
    flags = np.zeros((len(idx), len(idx)), dtype=bool)
    if len(idx):
        flags = small_pairs(total, idx, m)
        _withhold(total, flags, idx)
        for a in np.nonzero(np.diag(flags))[0]:
            notes.append(f"column {stats.columns[idx[a]]}: its 1s or its 0s are fewer than "
                         f"{m} rows, so its statistics are withheld")
        pairs = [f"{stats.columns[idx[a]]} and {stats.columns[idx[b]]}"
                 for a, b in zip(*np.nonzero(np.triu(flags, 1)), strict=True)
                 if not (flags[a, a] or flags[b, b])]
        if pairs:
            notes.append(f"joint statistics of {', '.join(pairs)} are withheld: a combination of "
                         f"their values covers fewer than {m} rows")
    cond: dict[str, CondMoments] = {}
    for b, block in stats.cond.items():
        j = stats.columns.index(b)
        if np.isnan(total.mean[j]):
            continue  # rule 1 withheld the column, and so its block
        rest = total.n - block.n
        if 0 < block.n < m or 0 < rest < m:
            notes.append(f"statistics conditioned on {b} are not sent: the rows where it is 1 or "
                         f"where it is 0 are fewer than {m}")
            continue
        kept = block.copy()
        a = int(np.flatnonzero(idx == j)[0])
        small = [int(idx[c]) for c in np.nonzero(flags[a])[0] if c != a]
        if small:  # rule 2 inside the block: the same small cells
            kept.mean[small] = np.nan
            kept.ss[small] = np.nan
            notes.append(f"some statistics conditioned on {b} are withheld: they would describe "
                         f"fewer than {m} rows")
        withheld_cols = [int(idx[c]) for c in np.nonzero(np.diag(flags))[0]]
        kept.mean[withheld_cols] = np.nan
        kept.ss[withheld_cols] = np.nan
        cond[b] = kept
    return Stats(list(stats.columns), total, stats.count.copy(), list(stats.binary), cond), notes
