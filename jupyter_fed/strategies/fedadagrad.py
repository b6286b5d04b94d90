"""FedAdagrad: Adagrad on the server over the aggregated client update (Reddi et al., 2021).

The accumulated squared updates shrink the step of coordinates that keep moving, a safe choice
when the right server learning rate is unknown.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from jupyter_fed.strategies._params import AggregationParams, FedAdagradParams
from jupyter_fed.strategies.fedopt import AdaptiveOptimizer


class FedAdagrad(AdaptiveOptimizer):
    """``m = b1*m + (1-b1)*d; v = v + d**2; w += eta*m/(sqrt(v)+tau)``.

    Parameters
    ----------
    eta
        Server learning rate (default 0.1).
    eta_l
        Client learning rate, accepted for parity with Flower and unused.
    beta_1
        First-moment decay (default 0.0, i.e. ``m = d``, as Flower's FedAdagrad).
    tau
        Adaptivity / numerical floor (default 1e-9).
    **aggregation
        The aggregation keys of ``AggregationParams``.

    State: ``"m/<parameter>"``, ``"v/<parameter>"`` and ``"step"``.
    """

    name: ClassVar[str] = "FedAdagrad"
    params_model: ClassVar[type[AggregationParams]] = FedAdagradParams
    params: FedAdagradParams

    def _second_moment(self, v: np.ndarray, delta_sq: np.ndarray) -> np.ndarray:
        return v + delta_sq
