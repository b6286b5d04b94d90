"""Coordinator half of ffnet: initial weights, strategy, metric merging, artefact description."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jupyter_fed.errors import UpdateRejected
from jupyter_fed.packages._hfl import HFLPlan
from jupyter_fed.packages._schema import Problem, label_problems, supervised_problems
from jupyter_fed.packages.ffnet import _net
from jupyter_fed.packages.ffnet.config import parse
from jupyter_fed.strategies import Weights, make_strategy


class FFNetPlan(HFLPlan):
    """HFL plan for a feed-forward network under a FedAvg-family strategy."""

    def __init__(self, model_config: dict[str, Any], data_config: dict[str, Any],
                 num_rounds: int) -> None:
        self.cfg, self.data = parse(model_config, data_config)
        best = self.cfg.save_best_model
        super().__init__(model_config, data_config, num_rounds,
                         strategy=make_strategy(self.cfg.strategy.model_dump()),
                         save_best=best.rule if best else None,
                         secure=self.cfg.secure_aggregation)

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        problems: list[Problem] = []
        for info in datasets.values():
            where = f"{runner}/{info['name']}"
            problems += supervised_problems(info, runner, self.data.predictors, self.data.target)
            if self.cfg.ml_task.type == "classification":
                problems += label_problems("data_config.target", self.data.target, info, where,
                                           self.cfg.model.params.output_size)
        return problems

    def step_params(self) -> dict[str, Any]:
        # num_rounds lets the runner charge epsilon / num_rounds per fit step (see ffnet._dp).
        return {"model_config": self.model_config, "data_config": self.data_config,
                "num_rounds": self.num_rounds}

    @property
    def prepare_step(self) -> str | None:
        """``moments`` when predictors are standardised: their federated mean and spread."""
        return "moments" if self.cfg.standardize else None

    def prepared(self, weights: Weights, answers: Sequence[tuple[str, dict[str, Any],
                                                               dict[str, np.ndarray]]]) -> Weights:
        """The initial weights with the standardisation buffers set from every client's moments."""
        width = self.cfg.model.params.input_size
        parts = []
        for cid, outputs, tensors in answers:
            count, mean, m2 = outputs.get("count"), tensors.get("mean"), tensors.get("m2")
            if not (isinstance(count, int) and count > 0 and mean is not None and m2 is not None
                    and mean.shape == (width,) and m2.shape == (width,)
                    and np.isfinite(mean).all() and np.isfinite(m2).all() and (m2 >= 0).all()):
                raise UpdateRejected(f"client {cid} sent malformed feature moments")
            parts.append((count, mean, m2))
        return {**weights, **_net.standardization(*_net.merge_moments(parts))}

    def initial_weights(self) -> Weights:
        return _net.initial_weights(self.cfg)

