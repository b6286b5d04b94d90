"""Each party's own bins: scikit-learn's quantile edges, computed where the column is.

The edges of a column are the midpoints between its distinct values when it has at most
``max_bins`` of them, else the ``max_bins - 1`` inner percentiles
(``method="averaged_inverted_cdf"``, duplicates dropped) — scikit-learn's (1.5+) ``_BinMapper``
rule, so the bins (and hence the trees) are the ones scikit-learn would find on the joined rows.
A value goes to the first bin whose upper edge is ``>=`` it, and a split at bin ``b`` sends
``x <= edges[b]`` left. Edges never leave the party; the label party is told only how many bins
each column has.
"""

from __future__ import annotations

import numpy as np

from jupyter_fed.errors import ConfigError

__all__ = ["codes", "edges"]

SUBSAMPLE = 200_000
"""scikit-learn bins on at most this many rows."""


def edges(x: np.ndarray, max_bins: int, seed: int) -> list[np.ndarray]:
    """Upper bin edges of every column of ``x`` (rows × columns, no NaN)."""
    if len(x) > SUBSAMPLE:
        x = x[np.random.default_rng(seed).choice(len(x), SUBSAMPLE, replace=False)]
    out = []
    for col in x.T:
        distinct = np.unique(col)
        if len(distinct) <= max_bins:
            mids = (distinct[:-1] + distinct[1:]) * 0.5
        else:
            mids = np.unique(np.percentile(col, np.linspace(0, 100, max_bins + 1)[1:-1],
                                           method="averaged_inverted_cdf"))
        out.append(np.asarray(mids, np.float64))
    return out


def codes(x: np.ndarray, cuts: list[np.ndarray]) -> np.ndarray:
    """Bin codes, columns × rows (uint8)."""
    if not np.isfinite(x).all():
        raise ConfigError("a predictor holds missing or infinite values",
                          "vfl_gbm needs complete predictors: impute them first")
    return np.stack([np.searchsorted(c, col, side="left").astype(np.uint8)
                     for c, col in zip(cuts, x.T, strict=True)]) if cuts else \
        np.zeros((0, len(x)), np.uint8)


def pad(cuts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged edges as a padded (columns × widest) array and the count of each row."""
    n = np.array([len(c) for c in cuts], np.int32)
    out = np.zeros((len(cuts), max(int(n.max(initial=0)), 1)))
    for i, c in enumerate(cuts):
        out[i, :len(c)] = c
    return out, n


def unpad(arr: np.ndarray, n: np.ndarray) -> list[np.ndarray]:
    return [arr[i, :int(k)] for i, k in enumerate(n)]
