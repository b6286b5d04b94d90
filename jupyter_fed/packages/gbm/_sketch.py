"""Shared bin edges from mergeable relative-error quantile sketches (DDSketch).

Each runner sketches every predictor of its training rows with DDSketch's logarithmic mapping
(the ``ddsketch`` library's :class:`~ddsketch.mapping.LogarithmicMapping`: a value ``v > 0``
falls in bucket ``ceil(log_γ v)``, ``γ = (1 + α) / (1 - α)``, and is represented within relative
error ``α``, ``sketch_relative_accuracy``; negative values in a mirrored store, zero apart). The
sketch's state is three arrays per predictor — sign, bucket key, count — so it travels as
safetensors and merges by adding counts per key, which is exactly DDSketch's merge. The
coordinator merges every runner's sketches and fixes each predictor's bin edges at the quantiles
``i / max_bins`` (``i = 1 … max_bins - 1``), as scikit-learn's binner does on pooled rows: no
exact quantile, minimum or maximum of any silo leaves it.

Small buckets are coarsened before they leave. A DDSketch is an exact whole-dataset histogram on
a very fine grid (0.1 % wide buckets by default): a bucket holding one row at the top of a
column — the largest salary — gives that row's value to 0.1 %. So, walking the buckets in value
order, consecutive buckets are pooled into groups of at least ``k`` rows (the policy's
``min_count``), and each group is released as one bucket — the one holding the group's middle
row — with the group's count: every released bucket stands for at least ``k`` rows, and a
group's position is a median, which no single row moves far (a mean would give away an
extreme's value divided by ``k``). Counts, and so the quantiles, move by less than one group;
with ``k`` well below ``rows / max_bins`` the edges barely change.

Counting is vectorised in numpy (the library adds values one by one); the unit tests check the
keys and quantiles against the library's own ``DDSketch``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bin_columns", "coarsen", "column_sketch", "edges_from_sketches", "mapping"]


def mapping(alpha: float):
    """DDSketch's logarithmic key mapping for relative accuracy ``alpha``."""
    from ddsketch.mapping import LogarithmicMapping

    return LogarithmicMapping(alpha)


def _multiplier(alpha: float) -> float:
    """``1 / ln γ`` as the library computes it (``log2`` times ``ln 2 / log1p(γ - 1)``)."""
    gm = 2 * alpha / (1 - alpha)
    return math.log(2) / math.log1p(gm)


def keys_of(values: np.ndarray, alpha: float) -> np.ndarray:
    """The library's ``mapping.key(v)`` for positive ``values``, vectorised."""
    return np.ceil(np.log2(values) * _multiplier(alpha)).astype(np.int64)


def values_of(keys: np.ndarray, alpha: float) -> np.ndarray:
    """The library's ``mapping.value(key)``: the representative of each bucket."""
    m = mapping(alpha)
    return np.exp2(np.asarray(keys, np.float64) / _multiplier(alpha)) * (2.0 / (1.0 + m.gamma))


def _signed(values: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(sign, key) of every value: sign -1 / 0 / +1, key 0 for zeros (DDSketch's zero bucket)."""
    tiny = mapping(alpha).min_possible
    sign = np.where(values > tiny, 1, np.where(values < -tiny, -1, 0)).astype(np.int8)
    keys = np.zeros(len(values), np.int64)
    nz = sign != 0
    keys[nz] = keys_of(np.abs(values[nz]), alpha)
    return sign, keys


SPAN = 2**41
"""Keys stay far below this (about ±360,000 buckets cover every float at α = 0.001)."""


def _code(sign: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """One int64 per bucket that sorts in value order: negative store reversed, zero, positive."""
    s = sign.astype(np.int64)
    return np.where(s < 0, -SPAN - keys, np.where(s > 0, SPAN + keys, 0))


def _uncode(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sign = np.sign(code).astype(np.int8)
    return sign, np.where(sign < 0, -code - SPAN, np.where(sign > 0, code - SPAN, 0))


def _buckets(sign: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (sign, key) buckets in value order, with their counts.

    A column's keys span a few thousand buckets per sign: counted with ``np.bincount`` over
    that span (linear) rather than sorted, unless the span is much wider than the column."""
    parts = []
    for side in (-1, 0, 1):
        k = keys[sign == side]
        if not len(k):
            continue
        low, high = int(k.min()), int(k.max())
        if high - low > 4 * len(k) + 1024:
            uniq, counts = np.unique(k, return_counts=True)
        else:
            counts = np.bincount(k - low, minlength=high - low + 1)
            uniq = np.flatnonzero(counts)
            counts, uniq = counts[uniq], uniq + low
        if side < 0:  # larger keys are more negative values: value order reverses them
            uniq, counts = uniq[::-1], counts[::-1]
        parts.append((np.full(len(uniq), side, np.int8), uniq.astype(np.int64), counts))
    if not parts:
        return np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]).astype(np.float64))


def representatives(sign: np.ndarray, keys: np.ndarray, alpha: float) -> np.ndarray:
    """The value each (sign, key) bucket stands for (0 for the zero bucket)."""
    return np.where(sign == 0, 0.0, sign * values_of(np.where(sign == 0, 0, keys), alpha))


def coarsen(sign: np.ndarray, keys: np.ndarray, counts: np.ndarray, k: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pool consecutive buckets (in value order) into groups of at least ``k`` rows; each group
    is released as one bucket, its median bucket, holding the group's count. A last group short
    of ``k`` joins the one before it. Returns the released (sign, key, count) in value order."""
    if k <= 1 or len(counts) == 0 or counts.min() >= k:
        return sign, keys, counts
    cum = np.cumsum(counts)
    # A group ending at bucket j is followed by one ending at the first bucket whose running
    # count reaches cum[j] + k: every such successor at once, then a walk along them.
    successor = np.searchsorted(cum, cum + (k - 1e-9), side="left").tolist()
    ends: list[int] = []
    j, n = int(np.searchsorted(cum, k - 1e-9, side="left")), len(cum)
    while j < n:
        ends.append(j)
        j = successor[j]
    if not ends:
        ends = [len(cum) - 1]
    elif ends[-1] != len(cum) - 1:
        ends[-1] = len(cum) - 1  # the short tail joins the last full group
    stop = np.asarray(ends)
    before = np.concatenate([[0.0], cum[stop[:-1]]])
    size = cum[stop] - before
    # the bucket holding each group's middle row: a rank statistic of >= k rows, which no single
    # row (an extreme in particular) can move far
    median = np.searchsorted(cum, before + size / 2.0, side="left")
    return sign[median], keys[median], size


def _merge_sorted(sign: np.ndarray, keys: np.ndarray, counts: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(_code(sign, keys), return_inverse=True)
    s, k = _uncode(uniq)
    return s, k, np.bincount(inverse.ravel(), weights=counts, minlength=len(uniq))


def column_sketch(values: np.ndarray, alpha: float, k: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One predictor's sketch as it may leave the runner: (sign, key, count), coarsened to ``k``."""
    values = np.asarray(values, np.float64)
    sign, keys = _signed(values, alpha)
    return coarsen(*_buckets(sign, keys), k)


def quantile_positions(counts: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Index of the bucket holding each quantile, by DDSketch's rank rule (``rank = q·(n-1)``,
    the first bucket whose running count exceeds it)."""
    cum = np.cumsum(counts)
    ranks = quantiles * (cum[-1] - 1)
    return np.minimum(np.searchsorted(cum, ranks, side="right"), len(cum) - 1)


def edges_from_sketches(sign: np.ndarray, keys: np.ndarray, counts: np.ndarray, alpha: float,
                        max_bins: int) -> np.ndarray:
    """Bin edges of one predictor from its merged sketch (all runners' buckets, any order).

    With at most ``max_bins`` buckets, one edge between each two (scikit-learn's midpoints
    between distinct values); otherwise an edge after the bucket of each quantile
    ``i / max_bins``. An edge is the midpoint of two neighbouring buckets' representatives —
    for adjacent buckets, exactly their common boundary — so a bucket's rows never straddle it.
    """
    if len(counts) == 0:
        return np.zeros(0)
    s, kk, c = _merge_sorted(sign, keys, counts)
    reps = representatives(s, kk, alpha)
    if len(reps) <= max_bins:
        chosen = np.arange(len(reps) - 1)
    else:
        q = np.arange(1, max_bins) / max_bins
        chosen = np.unique(quantile_positions(c, q))
        chosen = chosen[chosen < len(reps) - 1]
    return (reps[chosen] + reps[chosen + 1]) / 2.0


def bin_columns(x: np.ndarray, edges: np.ndarray, n_edges: np.ndarray) -> np.ndarray:
    """Bin codes (uint8), predictors × rows: code ``b`` iff ``edges[b-1] < x <= edges[b]``, as
    scikit-learn's binner maps values (and as the trees' real thresholds split them)."""
    out = np.empty((x.shape[1], x.shape[0]), dtype=np.uint8)
    for j in range(x.shape[1]):
        out[j] = np.searchsorted(edges[j, :n_edges[j]], x[:, j], side="left")
    return out
