"""Small groups: one minimum row count per release, and suppression of small noisy counts.

An exact aggregate of a few rows describes those rows. Every group an exact release describes —
the dataset (or view) itself, each binary column's 1s and 0s, each conditioned block and its
complement, each pair cell of two binary columns — must hold at least :func:`release_minimum`
rows: ``max(k, attributes + 5)`` (and the policy's ``min_rows`` if larger). ``k`` is the
policy's small-count threshold; ``attributes + 5`` is SymetryML's rule that a PSR of ``p``
attributes on fewer than ``p + 5`` rows is close to invertible.

For DP histograms, suppression is post-processing: a bin is zeroed when its *noisy* count is
below ``k`` — never after a second look at the true count, which would leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["release_minimum", "suppress_small"]


def release_minimum(policy: Mapping[str, Any], attributes: int) -> int:
    """Fewest rows behind any exact group: ``max(k, attributes + 5, policy min_rows)``."""
    k = int(policy.get("min_count") or 10)
    return max(k, int(attributes) + 5, int(policy.get("min_rows") or 0))


def suppress_small(noisy: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Zero every noisy count below ``k`` (and clamp negatives); returns the counts and how many
    positive bins were hidden. Only noisy counts may be given here."""
    counts = np.maximum(np.asarray(noisy, dtype=np.float64), 0.0)
    small = (counts > 0) & (counts < k)
    counts[small] = 0.0
    return counts, int(small.sum())
