"""Server-side strategies: how client updates become the next global model.

Five server optimisers (FedAvg, FedAvgM, FedAdam, FedAdagrad, FedYogi), each combined with one
aggregation rule (example-weighted mean, coordinate-wise median, trimmed mean, Krum, multi-Krum) and
optional norm clipping of every client update. ``make_strategy`` builds one from
``model_config["strategy"]``; ``validate_update`` screens each client update before aggregation.
"""

from __future__ import annotations

from jupyter_fed.strategies._params import (
    AGGREGATIONS,
    AdaptiveParams,
    AggregationParams,
    FedAdagradParams,
    FedAdamParams,
    FedAvgMParams,
    FedAvgParams,
    FedYogiParams,
    StrategyConfig,
)
from jupyter_fed.strategies._robust import AggregationInfo, AggregationRule
from jupyter_fed.strategies.base import ClientUpdate, Strategy, Weights
from jupyter_fed.strategies.fedadagrad import FedAdagrad
from jupyter_fed.strategies.fedadam import FedAdam
from jupyter_fed.strategies.fedavg import FedAvg, RobustStrategy
from jupyter_fed.strategies.fedavgm import FedAvgM
from jupyter_fed.strategies.fedopt import AdaptiveOptimizer, ServerOptimizer
from jupyter_fed.strategies.fedyogi import FedYogi
from jupyter_fed.strategies.registry import STRATEGY_NAMES, make_strategy
from jupyter_fed.strategies.validation import update_norm, validate_update

__all__ = [
    "AGGREGATIONS",
    "STRATEGY_NAMES",
    "AdaptiveOptimizer",
    "AdaptiveParams",
    "AggregationInfo",
    "AggregationParams",
    "AggregationRule",
    "ClientUpdate",
    "FedAdagrad",
    "FedAdagradParams",
    "FedAdam",
    "FedAdamParams",
    "FedAvg",
    "FedAvgM",
    "FedAvgMParams",
    "FedAvgParams",
    "FedYogi",
    "FedYogiParams",
    "RobustStrategy",
    "ServerOptimizer",
    "Strategy",
    "StrategyConfig",
    "Weights",
    "make_strategy",
    "update_norm",
    "validate_update",
]
