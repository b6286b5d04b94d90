"""Small groups: one minimum row count per release, and suppression of small noisy counts.

An exact aggregate of a few rows describes those rows. Every group an exact release describes —
the dataset (or view) itself, each binary column's 1s and 0s, each conditioned block and its
complement, each pair cell of two binary columns — must hold at least :func:`release_minimum`
rows: ``max(k, attributes + 5)`` (and the policy's ``min_rows`` if larger). ``k`` is the
policy's small-count threshold; ``attributes + 5`` is SymetryML's rule that a PSR of ``p``
attributes on fewer than ``p + 5`` rows is close to invertible.

A weighted sum whose weights the caller chooses (a model's coefficients decide each row's
weight in a Newton step) can hold every row and still be one row's: the dominance rule of
:func:`effective_rows` asks the weights to be worth the same minimum.

For DP histograms, suppression is post-processing: a bin is zeroed when its *noisy* count is
below ``k`` — never after a second look at the true count, which would leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["dominated", "effective_rows", "release_minimum", "suppress_small"]


def release_minimum(policy: Mapping[str, Any], attributes: int) -> int:
    """Fewest rows behind any exact group: ``max(k, attributes + 5, policy min_rows)``."""
    k = int(policy.get("min_count") or 10)
    return max(k, int(attributes) + 5, int(policy.get("min_rows") or 0))


def effective_rows(abs_sum: np.ndarray | float, square_sum: np.ndarray | float) -> np.ndarray:
    """How many rows per-row weights ``v`` are worth, ``(Σ|v|)² / Σv²`` (Kish's effective sample
    size): ``n`` for equal weights, about 1 when one row outweighs the rest together, 0 when all
    are 0. Summed block by block: give the two sums, not the weights."""
    a, q = np.asarray(abs_sum, np.float64), np.asarray(square_sum, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, a * a / np.where(q > 0, q, 1.0), 0.0)


def dominated(policy: Mapping[str, Any], attributes: int, abs_sum: np.ndarray | float,
              square_sum: np.ndarray | float) -> tuple[np.ndarray, int]:
    """Which weighted sums a few rows dominate — worth fewer than :func:`release_minimum` rows
    by :func:`effective_rows` — and that minimum (for the refusal's words)."""
    minimum = release_minimum(policy, attributes)
    return ~(effective_rows(abs_sum, square_sum) >= minimum), minimum


def suppress_small(noisy: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Zero every noisy count below ``k`` (and clamp negatives); returns the counts and how many
    positive bins were hidden. Only noisy counts may be given here."""
    counts = np.maximum(np.asarray(noisy, dtype=np.float64), 0.0)
    small = (counts > 0) & (counts < k)
    counts[small] = 0.0
    return counts, int(small.sum())
