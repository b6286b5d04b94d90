"""Differentially private partition selection: which category values may be named at all.

Naming a value is itself a release: a value held by one person (an age of 97 in a small clinic)
appears in the output only if that person is in the data. So a value is released only when its
noisy count clears a threshold calibrated to (epsilon, delta): with Laplace noise of scale
``1/epsilon`` and ``tau = 1 + ln(1/(2 delta)) / epsilon`` (the rule of Google's differential-privacy
library), a value held by a single row passes with probability at most ``delta``. OpenDP's
``make_laplace_threshold`` draws the noise and its privacy map confirms the (epsilon, delta).
The small-count threshold k plays no part in whether a value is named.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Mapping
from typing import Any

from jupyter_fed.privacy._opendp import dp

__all__ = ["select_partitions", "threshold"]


def threshold(epsilon: float, delta: float) -> int:
    """The release threshold for Laplace noise of scale ``1/epsilon`` and failure ``delta``."""
    if not (epsilon > 0 and 0 < delta < 1):
        raise ValueError("partition selection needs epsilon > 0 and 0 < delta < 1")
    return max(1, math.ceil(1.0 + math.log(1.0 / (2.0 * delta)) / epsilon))


def select_partitions(counts: Mapping[Hashable, int], epsilon: float, delta: float
                      ) -> dict[Hashable, float]:
    """Noisy counts of the values whose noisy count reaches :func:`threshold`; the others vanish.

    Each row holds one value (it contributes to one partition, by one): the release is
    (epsilon, delta)-DP, including the choice of which values appear.
    """
    if not counts:
        return {}
    keys = {str(k): k for k in counts}
    if len(keys) != len(counts):
        raise ValueError("category values must have distinct text forms")
    out = _measurement(float(epsilon), float(delta))({str(k): int(v) for k, v in counts.items()})
    return {keys[k]: float(v) for k, v in out.items()}


@functools.lru_cache(maxsize=256)
def _measurement(epsilon: float, delta: float) -> Any:
    """OpenDP's Laplace threshold measurement for (epsilon, delta), its map checked."""
    ns = dp()
    domain = ns.d.map_domain(ns.d.atom_domain(T=str), ns.d.atom_domain(T="i64"))
    metric = ns.me.l01inf_distance(ns.me.absolute_distance(T="i64"))
    tau = threshold(epsilon, delta)
    while True:  # OpenDP's exact delta for the discrete law; raise tau until it is within delta
        meas = ns.m.make_laplace_threshold(domain, metric, scale=1.0 / epsilon, threshold=tau)
        eps, dlt = meas.map((1, 1, 1))
        if eps <= epsilon * (1 + 1e-9) and dlt <= delta * (1 + 1e-9):
            return meas
        tau += 1
