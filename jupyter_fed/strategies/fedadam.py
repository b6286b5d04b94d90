"""FedAdam: Adam on the server over the aggregated client update (Reddi et al., 2021).

Adaptive per-coordinate steps let the server make progress on rarely-updated parameters and damp
noisy ones, which matters when clients see very different data.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from jupyter_fed.strategies._params import AggregationParams, FedAdamParams
from jupyter_fed.strategies.fedopt import AdaptiveOptimizer


class FedAdam(AdaptiveOptimizer):
    """``m = b1*m + (1-b1)*d; v = b2*v + (1-b2)*d**2; w += eta*m/(sqrt(v)+tau)``.

    Parameters
    ----------
    eta
        Server learning rate (default 0.1).
    eta_l
        Client learning rate, accepted for parity with Flower and unused: the client's optimiser is
        configured in the model config.
    beta_1, beta_2
        Moment decay rates (defaults 0.9 and 0.99).
    tau
        Adaptivity / numerical floor (default 1e-9).
    bias_correction
        If true, use Adam's bias-corrected rate ``eta*sqrt(1-b2**t)/(1-b1**t)`` at round ``t``
        (recent Flower versions do this); default false, the paper's formula.
    **aggregation
        The aggregation keys of ``AggregationParams``.

    State: ``"m/<parameter>"``, ``"v/<parameter>"`` and ``"step"``.
    """

    name: ClassVar[str] = "FedAdam"
    params_model: ClassVar[type[AggregationParams]] = FedAdamParams
    params: FedAdamParams

    def _second_moment(self, v: np.ndarray, delta_sq: np.ndarray) -> np.ndarray:
        return self.params.beta_2 * v + (1.0 - self.params.beta_2) * delta_sq

    def _learning_rate(self, step: int) -> float:
        p = self.params
        if not p.bias_correction:
            return p.eta
        return p.eta * float(np.sqrt(1.0 - p.beta_2**step)) / (1.0 - p.beta_1**step)
