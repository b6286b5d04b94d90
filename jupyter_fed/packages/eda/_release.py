"""From exact per-column aggregates to what leaves the runner: DP releases, with their caveats.

Per column, its share of the dataset's epsilon is spent as follows (delta likewise, split evenly
between the Gaussian releases and partition selection):

* categorical — all of it on DP partition selection: a value is named only if its noisy count
  clears a threshold calibrated to (epsilon, delta), never on k alone;
* numeric — ``bounds_share`` on private bounds when none were declared; of the rest, half on a
  histogram with two extra bins (below and above the bounds, so the noisy fraction of clipped
  rows comes for free), a quarter each on the sum and the sum of squares of the clipped values
  (centred on the bounds' midpoint, sensitivity half the range and its square).

Small noisy counts are suppressed afterwards (post-processing). A column that cannot be released
says why; one with more than :data:`CLIP_FLAG` of its rows clipped carries a flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages.eda._scan import Partial
from jupyter_fed.privacy.bounds import Bounds, support_threshold
from jupyter_fed.privacy.mechanisms import Mechanism, noisy_counts, noisy_vector
from jupyter_fed.privacy.partition import select_partitions, threshold
from jupyter_fed.privacy.suppression import suppress_small

__all__ = ["CLIP_FLAG", "release_categorical", "release_numeric", "withheld_bounds"]

CLIP_FLAG = 0.10
"""A column with more than this (noisy) fraction of its rows outside its bounds is flagged."""


def release_categorical(part: Partial, epsilon: float, delta: float, k: int) -> dict[str, Any]:
    """Noisy counts of the values that pass DP partition selection (then k, post-processing)."""
    released = select_partitions(part.values, epsilon, delta)
    values = sorted(released)
    counts, hidden = suppress_small(np.array([released[v] for v in values]), k)
    keep = counts > 0
    out: dict[str, Any] = {"kind": "categorical",
                           "values": [v for v, ok in zip(values, keep, strict=True) if ok],
                           "counts": counts[keep].tolist(), "suppressed": hidden,
                           "epsilon": epsilon, "delta": delta, "mechanism": "laplace",
                           "threshold": threshold(epsilon, delta)}
    if not out["values"]:
        out["withheld"] = (f"no value's noisy count reached the release threshold "
                           f"{out['threshold']} at epsilon {epsilon:.3g}: values held by few rows "
                           "are never named (raise epsilon or choose fewer columns)")
    return out


def withheld_bounds(epsilon: float) -> dict[str, Any]:
    """A numeric column whose private bounds could not be found (the reason, no values)."""
    need = support_threshold(epsilon / 2.0)
    return {"kind": "numeric", "edges": [], "counts": [], "suppressed": 0,
            "withheld": f"not enough rows for private bounds at epsilon {epsilon:.3g} (no "
                        f"power-of-two range held about {need:.0f} rows): declare public bounds "
                        "at registration (runner register --bounds), raise epsilon, or choose "
                        "fewer columns"}


def release_numeric(part: Partial, bounds: Bounds, epsilon: float, mechanism: Mechanism,
                    delta: float, k: int, bins: int) -> dict[str, Any]:
    """Histogram, clipped fraction, sum and sum of squares under ``bounds`` (``epsilon`` is what
    is left of the column's share after the bounds)."""
    assert part.hist is not None and part.sums is not None
    lo, hi = bounds.lo, bounds.hi
    d = delta / 3.0 if mechanism == "gaussian" else 0.0
    noisy = noisy_counts(part.hist, epsilon / 2.0, mechanism, d)
    half = (hi - lo) / 2.0
    s1 = float(noisy_vector(part.sums[:1], half, epsilon / 4.0, mechanism, d)[0])
    s2 = float(noisy_vector(part.sums[1:], half * half, epsilon / 4.0, mechanism, d)[0])
    n = float(max(noisy.sum(), 0.0))
    below, above = max(noisy[0], 0.0), max(noisy[-1], 0.0)
    clipped = float(min((below + above) / n, 1.0)) if n > 0 else 0.0
    counts, hidden = suppress_small(noisy[1:-1], k)
    out: dict[str, Any] = {
        "kind": "numeric", "edges": np.linspace(lo, hi, bins + 1).tolist(),
        "counts": counts.tolist(), "suppressed": hidden, "n": n, "below": float(below),
        "above": float(above), "clipped_fraction": clipped, "center": (lo + hi) / 2.0,
        "sum": s1, "sum_sq": s2, "bounds": bounds.source,
        "epsilon": epsilon + bounds.epsilon, "mechanism": mechanism, "flags": []}
    if clipped > CLIP_FLAG:
        out["flags"].append(f"{clipped:.0%} of rows (noisy) lie outside the "
                            f"{'declared' if bounds.source == 'declared' else 'private'} bounds: "
                            "its mean, spread and histogram are biased")
    if not counts.any():
        out["flags"].append(f"every histogram bin's noisy count fell below k={k}")
    return out
