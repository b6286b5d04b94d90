"""FedAvgM: server SGD with momentum on the aggregated update (Hsu et al., 2019).

Momentum smooths the global trajectory when clients are heterogeneous (non-IID data): each round's
aggregated update ``delta`` is added to a velocity ``v = server_momentum*v + delta`` and the global
weights move by ``server_learning_rate * v``. Same sign convention as Flower's FedAvgM (which keeps
``-delta`` and subtracts), so results agree.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from jupyter_fed.strategies._params import AggregationParams, FedAvgMParams
from jupyter_fed.strategies.fedopt import ServerOptimizer


class FedAvgM(ServerOptimizer):
    """FedAvg with server momentum; parameters in ``FedAvgMParams``.

    Parameters
    ----------
    server_learning_rate
        Step size on the velocity (default 1.0).
    server_momentum
        Momentum ``0 <= mu < 1`` (default 0.9). With ``mu = 0`` and learning rate 1 this is FedAvg.
    **aggregation
        The aggregation keys of ``AggregationParams``.

    State: ``"momentum/<parameter>"`` and ``"step"``.
    """

    name: ClassVar[str] = "FedAvgM"
    params_model: ClassVar[type[AggregationParams]] = FedAvgMParams
    slots: ClassVar[tuple[str, ...]] = ("momentum",)
    params: FedAvgMParams

    def _update(self, delta: np.ndarray, state: dict[str, np.ndarray], step: int) -> np.ndarray:
        state["momentum"] = self.params.server_momentum * state["momentum"] + delta
        return self.params.server_learning_rate * state["momentum"]
