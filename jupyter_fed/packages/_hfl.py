"""Coordinator-side base for horizontal-FL plans: rounds of fit, one final evaluation.

Round ``r`` sends the global model of round ``r-1``; each client first evaluates it on its test
rows, then trains it. So the metrics of model ``r-1`` arrive with the updates of round ``r``, and a
final evaluation step measures the last model: ``num_rounds + 1`` metric entries, one per model,
starting with the initial one, for the price of a single extra round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jupyter_fed.packages._schema import Problem
from jupyter_fed.strategies import ClientUpdate, Strategy, Weights


def weighted_metrics(per_client: Mapping[str, Mapping[str, Any]],
                     count_key: str = "test_num_examples", prefix: str = "test_") -> dict[str, float]:
    """Example-weighted mean of every metric the clients report (NaNs skipped, not propagated).

    Loss, accuracy and R² means weighted by test examples are the pooled-test-set values for loss
    and accuracy exactly; AUC is the weighted mean of per-client AUCs.
    """
    keys = sorted({k for m in per_client.values() for k in m if k != count_key})
    out: dict[str, float] = {}
    for key in keys:
        num = den = 0.0
        for m in per_client.values():
            v, n = m.get(key), float(m.get(count_key, 0))
            if isinstance(v, (int, float)) and math.isfinite(v) and n > 0:
                num, den = num + v * n, den + n
        if den > 0:
            out[key.removeprefix(prefix)] = num / den
    return out


class HFLPlan:
    """Drives an HFL package: what each round asks of clients and how answers are merged."""

    fit_step = "fit"
    eval_step = "evaluate"

    def __init__(self, strategy: Strategy, num_rounds: int, save_best: tuple[str, str] | None) -> None:
        self.strategy = strategy
        self.num_rounds = num_rounds
        self.save_best = save_best

    prepare_step: str | None = None
    """A step every client runs once before round 1 (e.g. feature moments), or ``None``."""

    def prepared(self, weights: Weights, answers: Sequence[tuple[str, dict[str, Any],
                                                               dict[str, np.ndarray]]]) -> Weights:
        """The initial weights after the prepare step: ``answers`` are (client, outputs, arrays)."""
        return weights

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        """Problems with one client's datasets (role -> catalog entry), before anything runs."""
        return []

    def step_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def initial_weights(self) -> Weights:
        raise NotImplementedError

    def artefact_meta(self) -> dict[str, Any]:
        raise NotImplementedError

    def aggregate(self, global_weights: Weights, updates: Sequence[ClientUpdate]) -> Weights:
        return self.strategy.aggregate(global_weights, updates)

    def federated_metrics(self, per_client: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
        return weighted_metrics(per_client)

    def best_round(self, federated: Sequence[Mapping[str, float]]) -> int:
        """Index of the model to hand back: the best by ``save_best_model``, else the last."""
        if not self.save_best or not federated:
            return len(federated) - 1
        metric, mode = self.save_best
        values = [m.get(metric, float("nan")) for m in federated]
        scored = [(v if mode == "min" else -v, i) for i, v in enumerate(values) if np.isfinite(v)]
        return min(scored)[1] if scored else len(federated) - 1
