"""Clipping bounds for a numeric column: declared by the custodian, or from DP quantiles.

Every DP sum, mean and histogram needs bounds that do not depend on the data (or are themselves
DP). A custodian may declare public bounds at registration (``--bounds age=0:120``): they cost
nothing and are used as they are. Otherwise :func:`private_bounds` finds them in two stages, both
with OpenDP mechanisms, each spending half of the bounds' epsilon:

1. **Support.** A Laplace histogram over a fixed signed power-of-two grid; the bins whose noisy
   count reaches ``T = ln(B / (2 beta)) / epsilon`` are the support (``B`` bins: an empty bin
   passes with probability at most ``beta / B``, so *any* empty bin with probability at most
   ``beta``), widened by one bin on each side. No bin reaching ``T`` → too few rows: the column
   is withheld with that reason.
2. **Quantiles.** OpenDP's private quantile mechanism (exponential mechanism, Smith 2011) picks
   the :data:`ALPHA` and ``1 - ALPHA`` quantiles among 256 evenly spaced candidates spanning the
   support. Rank-based scores tie for every candidate outside the data, so on a grid fixed in
   advance the mechanism can pick a point anywhere in the tie (the bounds -2^29, -2^28 of a column
   of values 113..282); inside the support it can at worst pick the support's own edges.

Failure probability: the bounds leave the support's neighbourhood only if stage 1 selects an empty
bin, probability at most :data:`FAILURE_PROBABILITY` per column. Whatever the bounds, the release
reports the noisy fraction of rows outside them, so a poor pair is visible, never silent.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from jupyter_fed.privacy._opendp import dp
from jupyter_fed.privacy.mechanisms import noisy_counts

__all__ = ["ALPHA", "FAILURE_PROBABILITY", "Bounds", "magnitude_bins", "private_bounds",
           "support_threshold"]

ALPHA = 0.02
"""Target quantiles: ``ALPHA`` and ``1 - ALPHA``."""

FAILURE_PROBABILITY = 1e-4
"""Probability, per column, that stage 1 counts an empty bin as data."""

QUANTILE_CANDIDATES = 256

# Signed power-of-two grid: zero, then ±[2^e, 2^(e+1)) for e in [E_MIN, E_MAX).
E_MIN, E_MAX = -24, 48
N_MAG = E_MAX - E_MIN
N_BINS = 2 * N_MAG + 1


@dataclass(frozen=True)
class Bounds:
    """Where a column's values are clipped, and how those bounds were obtained."""

    lo: float
    hi: float
    source: str
    """``"declared"`` (public, from the registration) or ``"private"`` (DP, two stages)."""
    epsilon: float = 0.0
    """What the bounds cost (0 for declared ones)."""


def magnitude_bins(x: np.ndarray) -> np.ndarray:
    """Index of each value on the signed power-of-two grid (0..2*N_MAG; N_MAG is the zero bin)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exp = np.floor(np.log2(np.abs(x)))
    exp = np.clip(np.nan_to_num(exp, neginf=E_MIN), E_MIN, E_MAX - 1).astype(np.int64) - E_MIN
    out = np.where(x > 0, N_MAG + 1 + exp, N_MAG - 1 - exp)
    return np.where(x == 0, N_MAG, out)


def magnitude_counts(x: np.ndarray) -> np.ndarray:
    """Rows per grid bin (what stage 1 adds noise to); mergeable across blocks by addition."""
    return np.bincount(magnitude_bins(x), minlength=N_BINS)


def _edge(index: int, upper: bool) -> float:
    """The outer edge of grid bin ``index`` (upper edge if ``upper``, else lower)."""
    index = min(max(index, 0), N_BINS - 1)
    if index == N_MAG:
        return 0.0
    if index > N_MAG:
        e = index - N_MAG - 1 + E_MIN
        return float(2.0 ** (e + 1)) if upper else float(2.0 ** e)
    e = N_MAG - 1 - index + E_MIN
    return -float(2.0 ** e) if upper else -float(2.0 ** (e + 1))


def support_threshold(epsilon: float, beta: float = FAILURE_PROBABILITY) -> float:
    """Noisy count a grid bin needs in stage 1 (spending ``epsilon``)."""
    return math.log(N_BINS / (2.0 * beta)) / epsilon


@functools.lru_cache(maxsize=256)
def _quantile(candidates: tuple[float, ...], alpha: float, scale: float) -> object:
    ns = dp()
    return ns.m.make_private_quantile(ns.d.vector_domain(ns.d.atom_domain(T=float, nan=False)),
                                      ns.me.symmetric_distance(), ns.ms.max_divergence(),
                                      candidates=list(candidates), alpha=alpha, scale=scale)


def private_bounds(counts: np.ndarray, values: np.ndarray, epsilon: float, alpha: float = ALPHA
                   ) -> Bounds | None:
    """DP clipping bounds from a column's grid counts and values; ``None`` if too few rows.

    Parameters
    ----------
    counts
        :func:`magnitude_counts` of the rows the bounds are learnt on.
    values
        The same rows' values.
    epsilon
        Spent in all: half on the support, a quarter on each quantile.
    """
    eps_support = epsilon / 2.0
    noisy = noisy_counts(np.asarray(counts), eps_support)
    above = np.flatnonzero(noisy >= support_threshold(eps_support))
    if above.size == 0:
        return None
    lo, hi = _edge(int(above[0]), upper=False), _edge(int(above[-1]), upper=True)
    if hi <= lo:  # only the bin of exact zeros: the neighbouring bins' outer edges
        lo, hi = _edge(int(above[0]) - 1, upper=False), _edge(int(above[-1]) + 1, upper=True)
    candidates = tuple(float(c) for c in np.unique(np.linspace(lo, hi, QUANTILE_CANDIDATES)))
    x = np.clip(np.asarray(values, dtype=np.float64), lo, hi)  # candidates span [lo, hi] anyway
    each = epsilon / 4.0
    found = []
    for a in (alpha, 1.0 - alpha):
        # the score of a candidate moves by at most max(a, 1 - a) when a row is added or
        # removed; OpenDP's noisy max is then 2 max(..) / scale -DP: check its own map
        meas = _quantile(candidates, a, 2.0 * max(a, 1.0 - a) / each)
        spent = meas.map(1)  # type: ignore[attr-defined]
        if spent > each * (1 + 1e-9):
            raise RuntimeError(f"quantile mechanism spends {spent:.6g} > {each:.6g}")
        found.append(float(meas(x.tolist())))  # type: ignore[operator]
    q_lo, q_hi = min(found), max(found)
    if q_hi <= q_lo:  # a (nearly) constant column: one grid step around it
        step = (hi - lo) / (QUANTILE_CANDIDATES - 1)
        q_lo, q_hi = q_lo - step, q_hi + step
    return Bounds(q_lo, q_hi, "private", epsilon)
