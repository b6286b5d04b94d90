"""Coordinator half of glm: the Newton solver (exact federated IRLS) or FedAvg rounds (SGD)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jupyter_fed.errors import UpdateRejected
from jupyter_fed.packages._hfl import HFLPlan
from jupyter_fed.packages._io import SessionIO
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._schema import Problem, supervised_problems
from jupyter_fed.packages.glm._newton import NewtonPlan
from jupyter_fed.packages.glm._weights import MEAN, SCALE, initial_sgd_weights
from jupyter_fed.packages.glm.config import GLMConfig, GLMData, parse
from jupyter_fed.strategies import Weights, make_strategy

__all__ = ["GLMPlan"]


class SGDPlan(HFLPlan):
    """FedAvg rounds of the GLM as a one-layer network (the reference's behaviour)."""

    prepare_sums = ("count", "sum", "sumsq", "y_sum")

    def __init__(self, cfg: GLMConfig, data: GLMData, model_config: Mapping[str, Any],
                 data_config: Mapping[str, Any], num_rounds: int, meta: dict[str, Any]) -> None:
        best = cfg.save_best_model
        super().__init__(model_config, data_config, num_rounds,
                         strategy=make_strategy(cfg.strategy.model_dump()),
                         save_best=best.rule if best else None,
                         secure=cfg.secure_aggregation)
        self.cfg, self.data, self.meta = cfg, data, meta

    @property
    def prepare_step(self) -> str | None:
        """``moments`` (exact, so not under DP): standardisation and the null intercept."""
        return "moments" if self.cfg.standardize else None

    def step_params(self) -> dict[str, Any]:
        return {"model_config": self.model_config, "data_config": self.data_config,
                "num_rounds": self.num_rounds}

    def initial_weights(self) -> Weights:
        return initial_sgd_weights(self.cfg, len(self.data.predictors))

    def prepared(self, weights: Weights, answers: Sequence[tuple[str, dict[str, Any],
                                                               dict[str, np.ndarray]]]) -> Weights:
        width = len(self.data.predictors)
        n, mean, m2, y_sum = 0, np.zeros(width), np.zeros(width), 0.0
        for cid, outputs, tensors in answers:
            count, mu, s = outputs.get("count"), tensors.get("mean"), tensors.get("m2")
            if not (isinstance(count, int) and count > 0 and mu is not None and s is not None
                    and mu.shape == (width,) and s.shape == (width,) and np.isfinite(mu).all()
                    and np.isfinite(s).all() and "y_sum" in tensors):
                raise UpdateRejected(f"client {cid} sent malformed moments")
            total = n + count
            delta = mu - mean
            mean, m2 = mean + delta * (count / total), m2 + s + delta ** 2 * (n * count / total)
            n, y_sum = total, y_sum + float(tensors["y_sum"][0])
        std = np.sqrt(np.maximum(m2, 0.0) / n)
        scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        start = initial_sgd_weights(self.cfg, width, y_sum / n)
        return {**start, MEAN: mean.astype(np.float32), SCALE: scale.astype(np.float32)}

    def artefact_meta(self) -> dict[str, Any]:
        return {**self.meta, "solver": "sgd"}


class GLMPlan(Plan):
    """A GLM session: Newton (default without DP and L1) or SGD, as ``solver`` says."""

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 10) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.cfg, self.data = parse(self.model_config, self.data_config)
        meta = {"model_config": self.model_config, "data_config": self.data_config,
                "family": self.cfg.ml_task.type, "link": self.cfg.ml_task.link,
                "alpha": self.cfg.ml_task.params.alpha, "l1_ratio": self.cfg.ml_task.params.l1_ratio}
        kind = NewtonPlan if self.cfg.resolved_solver == "newton" else SGDPlan
        self.impl: Plan = kind(self.cfg, self.data, self.model_config, self.data_config,
                               num_rounds, meta)

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        problems: list[Problem] = []
        for info in datasets.values():
            where = f"{runner}/{info['name']}"
            problems += supervised_problems(info, runner, self.data.predictors, self.data.target)
            problems += self._target_kind(info, where)
        return problems

    def _target_kind(self, info: Mapping[str, Any], where: str) -> list[Problem]:
        """A logistic target must be 0/1 labels, by the catalog's column kind (when recorded)."""
        col = next((c for c in info.get("columns") or [] if c["name"] == self.data.target), None)
        if self.cfg.ml_task.type != "logistic" or col is None or col.get("kind") is None:
            return []
        if col["kind"] == "numeric" or (col.get("classes") or 0) > 2:
            return [Problem("data_config.target", f"data_config.target {self.data.target!r} of "
                            f"{where} is not a 0/1 label; the logistic family needs one (use "
                            "ml_task.type 'normal', 'poisson', 'gamma' or 'inverse_gaussian' for "
                            "numeric targets)")]
        return []

    async def run(self, io: SessionIO) -> None:
        await self.impl.run(io)

    def artefact_meta(self) -> dict[str, Any]:
        return self.impl.artefact_meta()
