"""Differential privacy and small-group rules: the one place mechanisms and accounting live.

* :mod:`~jupyter_fed.privacy.mechanisms` — Laplace and Gaussian noise for counts and sums (OpenDP);
* :mod:`~jupyter_fed.privacy.partition` — which category values may be named (DP partition
  selection);
* :mod:`~jupyter_fed.privacy.bounds` — clipping bounds: declared, or DP quantiles;
* :mod:`~jupyter_fed.privacy.accounting` — (epsilon, delta) costs, delta caps, the DP-SGD
  accountant;
* :mod:`~jupyter_fed.privacy.suppression` — one minimum row count per release, small noisy counts.

Every package imports its mechanisms from here; OpenDP is imported on first use only.
"""

from __future__ import annotations

from jupyter_fed.privacy.accounting import MAX_DELTA, PrivacyCost, delta_cap
from jupyter_fed.privacy.suppression import release_minimum, suppress_small

__all__ = ["MAX_DELTA", "PrivacyCost", "delta_cap", "release_minimum", "suppress_small"]
