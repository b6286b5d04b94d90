"""FedAvg (McMahan et al., 2017) and the configured base every strategy shares.

``RobustStrategy`` holds what all strategies have in common: validated parameters and the
aggregation rule (mean, median, trimmed mean, Krum, multi-Krum, optional clipping). FedAvg simply
moves the global weights by the aggregated update; with the default ``mean`` rule that is exactly
the example-weighted mean of the clients' weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from jupyter_fed.strategies._params import AggregationParams, FedAvgParams, parse_params
from jupyter_fed.strategies._robust import (
    AggregationInfo,
    AggregationRule,
    RunningMean,
    cast_like,
    to_float64,
)
from jupyter_fed.strategies._robust import weighted_mean as _weighted_mean_deltas
from jupyter_fed.strategies.base import ClientUpdate, Strategy, Weights


class RobustStrategy(Strategy):
    """A strategy configured by keyword parameters and using a (robust) aggregation rule.

    Parameters
    ----------
    **params
        Validated by ``params_model``; see ``AggregationParams`` for the aggregation keys shared by
        all strategies (``aggregation``, ``trim_ratio``, ``num_byzantine``, ``num_selected``,
        ``clip_norm``).

    Raises
    ------
    ConfigError
        Naming each bad ``strategy.params.<field>`` and why.
    """

    name: ClassVar[str] = "RobustStrategy"
    params_model: ClassVar[type[AggregationParams]] = AggregationParams

    def __init__(self, **params: Any) -> None:
        self.params = parse_params(self.params_model, params,
                                   f"parameters of strategy {self.name}")
        self.rule = AggregationRule.from_params(self.params)
        self.last_info: AggregationInfo | None = None
        """What the last successful ``aggregate`` did (selected and clipped clients, norms)."""

    def aggregate(self, global_weights: Mapping[str, np.ndarray],
                  updates: Sequence[ClientUpdate]) -> Weights:
        return self.move(global_weights, *self.rule(global_weights, updates))

    def running(self, global_weights: Mapping[str, np.ndarray], check: bool = True
                ) -> RunningMean | None:
        """A :class:`RunningMean` when the rule is the mean; None for the robust rules."""
        return self.rule.running(global_weights, check)

    def aggregate_running(self, global_weights: Mapping[str, np.ndarray],
                          acc: RunningMean) -> Weights:
        return self.move(global_weights, *acc.result())

    def move(self, global_weights: Mapping[str, np.ndarray], global64: Weights, delta: Weights,
             info: AggregationInfo) -> Weights:
        """Apply the aggregated ``delta`` (this strategy's server step) and record ``info``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        set_params = ", ".join(f"{k}={getattr(self.params, k)!r}"
                               for k in type(self.params).model_fields
                               if k in self.params.model_fields_set)
        return f"{self.name}({set_params})"


class FedAvg(RobustStrategy):
    """Move the global weights by the aggregated client update (no server optimiser).

    With ``aggregation="mean"`` the result is the example-weighted mean of the clients' weights;
    with a robust rule it is the median / trimmed mean / Krum choice of them, after clipping.
    """

    name: ClassVar[str] = "FedAvg"
    params_model: ClassVar[type[AggregationParams]] = FedAvgParams

    def move(self, global_weights: Mapping[str, np.ndarray], global64: Weights, delta: Weights,
             info: AggregationInfo) -> Weights:
        self.last_info = info
        return cast_like({k: g + delta[k] for k, g in global64.items()}, global_weights)


def weighted_mean(updates: Sequence[ClientUpdate]) -> Weights:
    """Example-weighted mean of the updates' weights, computed in float64 then cast back.

    Kept for callers that only need plain FedAvg maths without a global model; the strategies use
    the delta-based rules of ``_robust``.
    """
    if not updates:
        return _weighted_mean_deltas([], [])  # raises UpdateRejected
    weights = [to_float64(u.weights) for u in updates]
    mean = _weighted_mean_deltas(weights, [u.num_examples for u in updates])
    return cast_like(mean, updates[0].weights)
