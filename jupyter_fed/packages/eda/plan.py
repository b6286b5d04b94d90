"""Coordinator half of EDA: collect each dataset's noisy histograms; nothing to compute on rows."""

from __future__ import annotations

from typing import Any

from jupyter_fed.packages._analytics import AnalyticsPlan, Contribution, MergeResult
from jupyter_fed.packages.eda.config import parse


class EdaPlan(AnalyticsPlan):
    def __init__(self, model_config: dict[str, Any], data_config: dict[str, Any],
                 num_rounds: int = 1) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.cfg = parse(model_config)  # validate at session creation

    def merge(self, contributions: list[Contribution]) -> MergeResult:
        names = [c.dataset for c in contributions]
        datasets = {}
        for c in contributions:
            key = c.dataset if names.count(c.dataset) == 1 else c.client_id
            datasets[key] = c.outputs.get("columns", {})
        return MergeResult(results={"datasets": datasets, "epsilon": self.cfg.epsilon,
                                    "mechanism": self.cfg.mechanism})

    def artefact_meta(self) -> dict[str, Any]:
        return {"package": "eda", "model_config": self.model_config,
                "data_config": self.data_config}
