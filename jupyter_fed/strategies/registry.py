"""Strategy names as users write them in ``model_config["strategy"]``.

``{"name": "FedAdam", "params": {"eta": 0.05, "aggregation": "trimmed_mean", "trim_ratio": 0.2}}``.
Names are case-insensitive (``_``/``-`` ignored). ``Median``, ``TrimmedMean``, ``Krum`` and
``MultiKrum`` are shorthands for FedAvg with that aggregation rule, because that is what people
mean when they ask for "a robust aggregator".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.strategies._params import (
    StrategyConfig,
    config_error,
    fold_name,
    normalize_aggregation,
    parse_params,
)
from jupyter_fed.strategies.fedadagrad import FedAdagrad
from jupyter_fed.strategies.fedadam import FedAdam
from jupyter_fed.strategies.fedavg import FedAvg, RobustStrategy
from jupyter_fed.strategies.fedavgm import FedAvgM
from jupyter_fed.strategies.fedyogi import FedYogi

_STRATEGIES: dict[str, type[RobustStrategy]] = {
    fold_name(cls.name): cls for cls in (FedAvg, FedAvgM, FedAdam, FedAdagrad, FedYogi)}
_SHORTHANDS: dict[str, tuple[str, str]] = {
    fold_name(name): (name, rule) for name, rule in (
        ("Median", "median"), ("TrimmedMean", "trimmed_mean"), ("Krum", "krum"),
        ("MultiKrum", "multi_krum"))}

STRATEGY_NAMES: tuple[str, ...] = (
    *(cls.name for cls in _STRATEGIES.values()), *(n for n, _ in _SHORTHANDS.values()))
"""Every name ``make_strategy`` accepts (in its canonical spelling)."""


def make_strategy(config: Mapping[str, Any] | str | None) -> RobustStrategy:
    """Build the strategy described by ``model_config["strategy"]``.

    Parameters
    ----------
    config
        ``{"name": ..., "params": {...}}``; a bare name string or None (FedAvg) also work. The
        parameters are validated by the strategy's pydantic model (see ``_params``).

    Raises
    ------
    ConfigError
        For an unknown name (the message lists the valid ones) or invalid parameters (the message
        names each ``strategy.params.<field>`` and the reason; ``details`` has one entry per field).
    """
    if config is None or isinstance(config, str):
        config = {"name": config or "FedAvg"}
    if not isinstance(config, Mapping):
        raise config_error([{"field": "strategy", "error": "must be an object with 'name' and "
                             f"'params', got {type(config).__name__}"}], "strategy",
                           'write e.g. {"name": "FedAvg", "params": {}}')
    parsed = parse_params(StrategyConfig, config, "strategy", prefix="strategy")
    key = fold_name(parsed.name)
    params = dict(parsed.params)
    if key in _SHORTHANDS:
        short, rule = _SHORTHANDS[key]
        given = params.get("aggregation", rule)
        if not isinstance(given, str) or normalize_aggregation(given) != rule:
            raise config_error([{"field": "strategy.params.aggregation",
                                 "error": f"must be {rule!r} (or left out) with strategy {short}"}],
                               f"parameters of strategy {short}",
                               'use {"name": "FedAvg", "params": {"aggregation": ...}} '
                               "to choose another rule")
        params["aggregation"] = rule
        parse_params(FedAvg.params_model, params, f"parameters of strategy {short}")  # its name
        return FedAvg(**params)
    cls = _STRATEGIES.get(key)
    if cls is None:
        valid = ", ".join(STRATEGY_NAMES)
        raise ConfigError(f"unknown strategy {parsed.name!r}; valid names: {valid}",
                          f"set model_config['strategy']['name'] to one of: {valid}",
                          details=[{"field": "strategy.name",
                                    "error": f"unknown strategy; valid names: {valid}"}])
    return cls(**params)
