"""Coordinator half of EDA: collect each dataset's noisy histograms; nothing to compute on rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupyter_fed.packages._analytics import AnalyticsPlan, Contribution, MergeResult
from jupyter_fed.packages._schema import Problem, check_columns
from jupyter_fed.packages.eda.config import parse


class EdaPlan(AnalyticsPlan):
    def __init__(self, model_config: dict[str, Any], data_config: dict[str, Any],
                 num_rounds: int = 1) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.cfg = parse(model_config)  # validate at session creation

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        problems: list[Problem] = []
        for info in datasets.values():
            name, where = info["name"], f"{runner}/{info['name']}"
            spec = self.data_config.get(name) or []
            features = {"columns": [c for c in info.get("columns", []) if c.get("role") != "id"]}
            named = [c for c in spec if isinstance(c, str)]
            problems += check_columns(f"data_config.{name}", named, info, where)
            problems += check_columns(f"data_config.{name}",
                                      [c for c in spec if isinstance(c, int)], features, where,
                                      index_base=1)
        return problems

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
