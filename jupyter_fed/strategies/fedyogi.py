"""FedYogi: Yogi on the server over the aggregated client update (Reddi et al., 2021).

Yogi's additive second-moment update grows ``v`` more cautiously than Adam's when gradients get
larger, which Reddi et al. found more stable for federated training.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from jupyter_fed.strategies._params import AggregationParams, FedYogiParams
from jupyter_fed.strategies.fedopt import AdaptiveOptimizer


class FedYogi(AdaptiveOptimizer):
    """``m = b1*m + (1-b1)*d; v = v - (1-b2)*d**2*sign(v - d**2); w += eta*m/(sqrt(v)+tau)``.

    Parameters
    ----------
    eta
        Server learning rate (default 0.01, as in Flower).
    eta_l
        Client learning rate, accepted for parity with Flower and unused.
    beta_1, beta_2
        Moment decay rates (defaults 0.9 and 0.99).
    tau
        Adaptivity / numerical floor (default 1e-3, as in Flower).
    **aggregation
        The aggregation keys of ``AggregationParams``.

    State: ``"m/<parameter>"``, ``"v/<parameter>"`` and ``"step"``.
    """

    name: ClassVar[str] = "FedYogi"
    params_model: ClassVar[type[AggregationParams]] = FedYogiParams
    params: FedYogiParams

    def _second_moment(self, v: np.ndarray, delta_sq: np.ndarray) -> np.ndarray:
        return v - (1.0 - self.params.beta_2) * delta_sq * np.sign(v - delta_sq)
