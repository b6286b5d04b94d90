"""Noise for counts and sums, drawn by OpenDP, with the privacy each release costs.

Why OpenDP and not ``numpy.random``: the textbook Laplace mechanism on floating-point numbers
leaks through the gaps between representable doubles (Mironov, CCS 2012), and a numpy generator
can be seeded or replayed. OpenDP samples its discrete Laplace and Gaussian noise exactly from
the OS's randomness, and every measurement carries a privacy map, which is checked here against
the epsilon (and delta) the runner debited before any row was read.

Conventions: neighbouring datasets differ by one row (added or removed). A histogram, where one
row falls in exactly one bin, has L1 and L2 sensitivity 1. Sums of clipped values have the
sensitivity the caller states. Clamping at zero and suppressing small noisy counts afterwards are
post-processing and cost nothing.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np

from jupyter_fed.privacy._opendp import dp

__all__ = ["Mechanism", "count_noise_std", "gaussian_scale", "integer_noise", "noisy_counts",
           "noisy_vector"]

Mechanism = Literal["laplace", "gaussian"]

_SLACK = 1.0 + 1e-9
"""Sums computed in floating point may exceed their nominal sensitivity by a few ulps; the noise
is calibrated to a sensitivity this much larger so the rounding cannot void the guarantee."""


def _check(measurement: object, d_in: float, epsilon: float, delta: float) -> None:
    """Refuse a release whose OpenDP privacy map exceeds what was debited."""
    spent = measurement.map(d_in)  # type: ignore[attr-defined]
    eps, dlt = (spent, 0.0) if isinstance(spent, float) else spent
    if eps > epsilon * (1 + 1e-9) or dlt > delta * (1 + 1e-9):
        raise RuntimeError(f"mechanism spends ({eps:.6g}, {dlt:.3g}), more than the "
                           f"({epsilon:.6g}, {delta:.3g}) debited")


@functools.lru_cache(maxsize=256)
def gaussian_scale(epsilon: float, delta: float) -> float:
    """Smallest Gaussian noise scale (sensitivity 1) that OpenDP proves (epsilon, delta)-DP.

    OpenDP's Gaussian mechanism is zero-concentrated DP; its conversion to (epsilon, delta) is
    tighter than the classic ``sqrt(2 ln(1.25/delta))/epsilon``. The scale for sensitivity ``s``
    is ``s`` times this one.
    """
    ns = dp()

    def make(scale: float) -> object:
        m = ns.m.make_gaussian(ns.d.atom_domain(T=float, nan=False), ns.me.absolute_distance(T=float),
                               scale=scale)
        return ns.c.make_fix_delta(ns.c.make_zCDP_to_approxDP(m), delta)

    return float(ns.binary_search_param(make, d_in=1.0, d_out=(epsilon, delta)))


def count_noise_std(epsilon: float, mechanism: Mechanism = "laplace", delta: float = 0.0) -> float:
    """Standard deviation of the noise :func:`noisy_counts` adds (before rounding or clamping)."""
    if mechanism == "laplace":
        return math.sqrt(2.0) / epsilon
    return gaussian_scale(epsilon, delta)


def noisy_counts(counts: np.ndarray, epsilon: float, mechanism: Mechanism = "laplace",
                 delta: float = 0.0) -> np.ndarray:
    """Integer counts plus discrete Laplace (epsilon) or Gaussian (epsilon, delta) noise.

    ``counts`` is one histogram: one row changes one entry by one. The result is integer-valued
    and may be negative; clamp or suppress it afterwards (post-processing).
    """
    values = np.rint(np.asarray(counts, dtype=np.float64)).astype(np.int64)
    if values.size == 0:
        return values.astype(np.float64)
    ns = dp()
    domain = ns.d.vector_domain(ns.d.atom_domain(T="i64"))
    if mechanism == "laplace":
        meas = ns.m.make_laplace(domain, ns.me.l1_distance(T="i64"), scale=1.0 / epsilon)
    elif mechanism == "gaussian":
        base = ns.m.make_gaussian(domain, ns.me.l2_distance(T="i64"),
                                  scale=gaussian_scale(epsilon, delta))
        meas = ns.c.make_fix_delta(ns.c.make_zCDP_to_approxDP(base), delta)
    else:
        raise ValueError(f"unknown mechanism {mechanism!r}")
    _check(meas, 1, epsilon, delta)
    return np.asarray(meas(values.tolist()), dtype=np.float64)


def noisy_vector(values: np.ndarray, sensitivity: float, epsilon: float,
                 mechanism: Mechanism = "laplace", delta: float = 0.0) -> np.ndarray:
    """A vector of sums plus noise for the stated sensitivity (L1 for Laplace, L2 for Gaussian).

    The caller clips every row's contribution so that adding or removing a row moves the vector
    by at most ``sensitivity`` in that norm.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return x
    if not np.isfinite(x).all():
        raise ValueError("sums to be released must be finite")
    ns = dp()
    d_in = float(sensitivity) * _SLACK
    domain = ns.d.vector_domain(ns.d.atom_domain(T=float, nan=False))
    if mechanism == "laplace":
        meas = ns.m.make_laplace(domain, ns.me.l1_distance(T=float), scale=d_in / epsilon)
    elif mechanism == "gaussian":
        base = ns.m.make_gaussian(domain, ns.me.l2_distance(T=float),
                                  scale=d_in * gaussian_scale(epsilon, delta))
        meas = ns.c.make_fix_delta(ns.c.make_zCDP_to_approxDP(base), delta)
    else:
        raise ValueError(f"unknown mechanism {mechanism!r}")
    _check(meas, d_in, epsilon, delta)
    return np.asarray(meas(x.tolist()), dtype=np.float64).reshape(np.shape(values))


def integer_noise(shape: int | tuple[int, ...], sensitivity: int, epsilon: float) -> np.ndarray:
    """Discrete Laplace noise alone (int64), for a vector of integer sums of L1 ``sensitivity``.

    For releases whose exact value this party never sees: an evaluator adds it to encrypted sums
    (EDA intersect mode), so the key holder who decrypts sees only the noisy sum. Scale
    ``sensitivity / epsilon``; OpenDP's privacy map is checked against ``epsilon``.
    """
    size = int(np.prod(shape))
    if size == 0:
        return np.zeros(shape, dtype=np.int64)
    if sensitivity < 1:
        raise ValueError("sensitivity must be a positive integer")
    ns = dp()
    domain = ns.d.vector_domain(ns.d.atom_domain(T="i64"))
    meas = ns.m.make_laplace(domain, ns.me.l1_distance(T="i64"), scale=sensitivity / epsilon)
    _check(meas, int(sensitivity), epsilon, 0.0)
    return np.asarray(meas([0] * size), dtype=np.int64).reshape(shape)
