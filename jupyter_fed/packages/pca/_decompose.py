"""From merged moments to principal axes: scikit-learn's ``covariance_eigh`` PCA, without rows.

The pooled covariance ``M2 / (n - 1)`` is what every silo's count, mean and centred cross-products
merge into exactly; its eigendecomposition gives the axes and the explained variances that
``sklearn.decomposition.PCA`` computes on the concatenated rows (its ``covariance_eigh`` solver
does the same, and its SVD solvers agree to rounding). Signs follow scikit-learn's ``svd_flip``
rule for axes (the largest-magnitude loading of each axis is positive), so results compare
directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Decomposition", "decompose"]


@dataclass
class Decomposition:
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    singular_values: np.ndarray
    noise_variance: float
    eigenvalues: np.ndarray
    """Every eigenvalue of the covariance, largest first (also those of dropped axes)."""


def choose(ratio: np.ndarray, n_components: int | float | None, rank: int) -> int:
    """The number of axes kept: as asked, the fewest explaining a fraction, or all (``rank``)."""
    if n_components is None:
        return rank
    if isinstance(n_components, float):
        return int(min(np.searchsorted(np.cumsum(ratio), n_components, side="right") + 1, rank))
    return int(min(n_components, rank))


def decompose(n: int, m2: np.ndarray, n_components: int | float | None) -> Decomposition:
    """Axes of the ``n`` pooled rows whose centred cross-product matrix is ``m2``."""
    cov = (m2 + m2.T) / (2.0 * (n - 1))
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order].T
    pick = np.argmax(np.abs(vectors), axis=1)
    vectors *= np.sign(vectors[np.arange(len(vectors)), pick])[:, None]
    total = values.sum()
    ratio = values / total if total > 0 else np.zeros_like(values)
    rank = min(n, len(values))
    k = choose(ratio, n_components, rank)
    noise = float(values[k:rank].mean()) if k < rank else 0.0
    return Decomposition(vectors[:k], values[:k], ratio[:k], np.sqrt(values[:k] * (n - 1)), noise,
                         values)
