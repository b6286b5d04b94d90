"""Noise for counts, private clipping bounds, and suppression of small counts.

Neighbouring datasets differ by one row. One row falls in exactly one bin of a column's histogram,
so each histogram has L1 and L2 sensitivity 1: Laplace noise of scale 1/ε, or Gaussian noise of
σ = sqrt(2 ln(1.25/δ))/ε, makes one column's histogram ε-DP ((ε, δ)-DP). Rounding, clamping at zero
and suppressing bins below k are post-processing and cost nothing.
"""

from __future__ import annotations

import math

import numpy as np

# Magnitude grid for private bounds: zero, then ±[2^e, 2^(e+1)) for e in [E_MIN, E_MAX).
E_MIN, E_MAX = -24, 48
N_MAG = E_MAX - E_MIN


def gaussian_sigma(epsilon: float, delta: float) -> float:
    """Noise scale of the classic Gaussian mechanism for sensitivity 1."""
    return math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def noisy_counts(counts: np.ndarray, epsilon: float, mechanism: str, rng: np.random.Generator,
                 delta: float = 1e-6) -> np.ndarray:
    """Counts plus calibrated noise, rounded and clamped at zero."""
    counts = np.asarray(counts, dtype=np.float64)
    if mechanism == "laplace":
        noise = rng.laplace(0.0, 1.0 / epsilon, counts.shape)
    elif mechanism == "gaussian":
        noise = rng.normal(0.0, gaussian_sigma(epsilon, delta), counts.shape)
    else:
        raise ValueError(f"unknown mechanism {mechanism!r}")
    return np.maximum(np.rint(counts + noise), 0.0)


def suppress_small(counts: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Zero every nonzero count below ``k``; returns the counts and how many bins were hidden."""
    counts = np.asarray(counts, dtype=np.float64).copy()
    small = (counts > 0) & (counts < k)
    counts[small] = 0.0
    return counts, int(small.sum())


def magnitude_bins(x: np.ndarray) -> np.ndarray:
    """Index of each value on the signed power-of-two grid (0..2*N_MAG; N_MAG is the zero bin)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        exp = np.floor(np.log2(np.abs(x)))
    exp = np.clip(np.nan_to_num(exp, neginf=E_MIN), E_MIN, E_MAX - 1).astype(np.int64) - E_MIN
    out = np.where(x > 0, N_MAG + 1 + exp, N_MAG - 1 - exp)
    return np.where(x == 0, N_MAG, out)


def _edge(index: int, upper: bool) -> float:
    """The outer edge of grid bin ``index`` (upper edge if ``upper``, else lower)."""
    if index == N_MAG:
        return 0.0
    if index > N_MAG:
        e = index - N_MAG - 1 + E_MIN
        return float(2.0 ** (e + 1)) if upper else float(2.0 ** e)
    e = N_MAG - 1 - index + E_MIN
    return -float(2.0 ** e) if upper else -float(2.0 ** (e + 1))


def private_bounds(magnitude_counts: np.ndarray, epsilon: float, threshold: float,
                   rng: np.random.Generator) -> tuple[float, float] | None:
    """Clipping bounds from a noisy power-of-two histogram; ``None`` if too little data.

    The bounds are grid edges (powers of two), chosen from noisy counts: they reveal neither the
    exact minimum nor maximum, and cost ``epsilon`` (one row moves one grid count by one).
    """
    noisy = magnitude_counts + rng.laplace(0.0, 1.0 / epsilon, magnitude_counts.shape)
    above = np.flatnonzero(noisy > threshold)
    if above.size == 0:
        return None
    lo, hi = _edge(int(above[0]), upper=False), _edge(int(above[-1]), upper=True)
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi
