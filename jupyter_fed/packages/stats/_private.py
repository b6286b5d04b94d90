"""Statistics of filtered rows: differentially private, never exact.

An exact answer about the rows a filter selects, next to the exact answer about all rows, gives
the rows in between: with n = 2000, ``x0 < 1001`` and ``x0 >= 1000`` from two users recovered one
row to the last digit (the tracker attack), and ``x0 < 6`` gave the exact n = 6 and the sums of
six people. Pairwise checks cannot see three queries. So a filter makes the query a DP query:

* clipping bounds per column — declared at registration (free), else learnt privately on the
  filtered rows with ``bounds_share`` of the epsilon (:func:`~jupyter_fed.privacy.bounds.private_bounds`);
* each kept row contributes ``[1, u, u uᵀ]`` with ``u = (clip(x) - c) / h`` in ``[-1, 1]`` (``c``,
  ``h`` the bounds' centre and half-width): the count, sums and cross-products, whose L2 norm is
  at most ``sqrt(1 + p + p(p+1)/2)``;
* OpenDP's Gaussian mechanism adds noise to the whole vector at once for the rest of the
  (epsilon, delta); means, variances and covariances follow by post-processing.

No exact minimum is checked on the filtered rows (a refusal would itself say how many there are);
a noisy count below the release minimum withholds the answer instead, which is post-processing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jupyter_fed.contracts import Expr, filter_columns, filter_mask
from jupyter_fed.packages.base import DatasetHandle, StepContext
from jupyter_fed.packages.stats._moments import Moments, Stats
from jupyter_fed.packages.stats._scan import block_rows
from jupyter_fed.privacy.bounds import Bounds, magnitude_counts, private_bounds
from jupyter_fed.privacy.mechanisms import noisy_vector

__all__ = ["private_stats"]

BOUNDS_SHARE = 0.5
"""Share of the epsilon spent on learning bounds for columns that have none declared (bounds on
a filtered subset are the costly part: declared bounds make filtered queries far more accurate)."""

BOUNDS_ROWS = 200_000
"""Filtered rows (from the start of the file) the private bounds are learnt on."""


def _rows(handle: DatasetHandle, read: list[str], p: int, row_filter: Expr, batch_rows: int
          ) -> Any:
    for block in handle.iter_batches(read, block_rows(batch_rows, len(read))):
        mask = filter_mask(row_filter, {c: block[:, i] for i, c in enumerate(read)})
        yield block[mask, :p]


def _bounds(ctx: StepContext, handle: DatasetHandle, columns: list[str], read: list[str],
            row_filter: Expr, batch_rows: int, declared: dict[str, tuple[float, float]],
            epsilon: float) -> tuple[dict[str, Bounds | None], float]:
    """Bounds per column, and the epsilon they cost (the learnt ones share ``epsilon``)."""
    out: dict[str, Bounds | None] = {c: Bounds(*declared[c], "declared") for c in columns
                                     if c in declared}
    learn = [c for c in columns if c not in declared]
    if not learn:
        return out, 0.0
    j = [columns.index(c) for c in learn]
    grid = np.zeros((len(learn), magnitude_counts(np.zeros(1)).size))
    prefix: list[np.ndarray] = []
    taken = 0
    for rows in _rows(handle, read, len(columns), row_filter, batch_rows):
        ctx.progress(0.3, "private bounds")
        part = rows[:max(0, BOUNDS_ROWS - taken), j]
        taken += len(part)
        for i in range(len(learn)):
            grid[i] += magnitude_counts(part[:, i])
        prefix.append(part)
        if taken >= BOUNDS_ROWS:
            break
    values = np.concatenate(prefix) if prefix else np.zeros((0, len(learn)))
    each = epsilon / len(learn)
    for i, c in enumerate(learn):
        out[c] = private_bounds(grid[i], values[:, i], each)
    return out, epsilon


def private_stats(ctx: StepContext, handle: DatasetHandle, columns: list[str], row_filter: Expr,
                  binary: list[str], batch_rows: int, epsilon: float, delta: float,
                  minimum: int) -> tuple[Stats, list[str]]:
    """A DP answer for the rows ``row_filter`` keeps; spends exactly (epsilon, delta)."""
    read = columns + [c for c in filter_columns(row_filter) if c not in columns]
    declared = {c.name: tuple(c.bounds) for c in handle.info.columns
                if c.name in columns and getattr(c, "bounds", None)}
    eps_bounds = epsilon * BOUNDS_SHARE if len(declared) < len(columns) else 0.0
    bounds, spent = _bounds(ctx, handle, columns, read, row_filter, batch_rows, declared,
                            eps_bounds)
    notes = [f"the filter makes this answer differentially private: epsilon {epsilon:g}, delta "
             f"{delta:.3g} spent; counts, means and cross-products carry noise"]
    missing = [c for c, b in bounds.items() if b is None]
    if missing:
        notes.append(f"not enough filtered rows to learn private bounds of {', '.join(missing)}: "
                     "declare bounds at registration (runner register --bounds)")
        usable = [c for c in columns if c not in missing]
    else:
        usable = list(columns)
    p = len(usable)
    lo = np.array([bounds[c].lo for c in usable])  # type: ignore[union-attr]
    hi = np.array([bounds[c].hi for c in usable])  # type: ignore[union-attr]
    centre, half = (lo + hi) / 2.0, np.maximum((hi - lo) / 2.0, 1e-12)
    pick = [columns.index(c) for c in usable]
    upper = np.triu_indices(p)
    n, s1, s2 = 0.0, np.zeros(p), np.zeros((p, p))
    for rows in _rows(handle, read, len(columns), row_filter, batch_rows):
        ctx.progress(0.7, "noisy moments")
        u = (np.clip(rows[:, pick], lo, hi) - centre) / half
        n += len(u)
        s1 += u.sum(axis=0)
        s2 += u.T @ u
    if not usable:  # no column has bounds: the count alone
        n = float(sum(len(rows) for rows in _rows(handle, read, len(columns), row_filter,
                                                  batch_rows)))
    vector = np.concatenate([[n], s1, s2[upper]])
    sensitivity = math.sqrt(1 + p + p * (p + 1) / 2)
    noisy = noisy_vector(vector, sensitivity, epsilon - spent, "gaussian", delta)
    nn, su = float(noisy[0]), noisy[1:1 + p]
    suu = np.zeros((p, p))
    suu[upper] = noisy[1 + p:]
    suu = suu + suu.T - np.diag(np.diag(suu))
    full = len(columns)
    mean, m2 = np.full(full, np.nan), np.full((full, full), np.nan)
    if nn >= minimum and p:
        mean_u = su / nn
        mean[pick] = centre + half * mean_u
        m2[np.ix_(pick, pick)] = np.outer(half, half) * (suu - nn * np.outer(mean_u, mean_u))
    else:
        notes.append(f"the noisy count of filtered rows is below {minimum}: nothing is released")
    total = Moments(max(nn, 0.0), mean, m2)
    stats = Stats(list(columns), total, np.full(full, max(nn, 0.0)),
                  [c for c in binary if c in usable], {},
                  {"epsilon": float(epsilon), "delta": float(delta)})
    return stats, notes
