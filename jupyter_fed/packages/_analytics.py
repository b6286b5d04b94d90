"""Coordinator-side base for analytics packages: one step at every runner, one merge.

EDA and statistics sessions have no rounds: each runner computes its (noise-protected, policy-
checked) aggregates once, and the coordinator merges them into a result the kernel explores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jupyter_fed.packages._schema import Problem


@dataclass
class Contribution:
    """One runner's answer to the compute step."""

    client_id: str
    dataset: str
    outputs: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class MergeResult:
    """What the session stores: JSON results, arrays, and per-client notes for the log."""

    results: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    """client id → reason a contribution was left out (e.g. a receive-side contract rule)."""


class AnalyticsPlan:
    """Drives a one-step analytics package."""

    step = "compute"
    kind = "analytics"

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 1) -> None:
        self.model_config, self.data_config = dict(model_config), dict(data_config)
        self.num_rounds = 1

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        """Problems with one client's datasets (role -> catalog entry), before anything runs."""
        return []

    def agree(self, schemas: Mapping[str, Mapping[str, Any]]) -> None:
        """Before the step runs: settle what the runners must agree on (e.g. column kinds) from
        each client's catalog entry of its dataset. Nothing to agree on by default."""

    def step_params(self, dataset: str) -> dict[str, Any]:
        """Parameters for the step at the runner holding ``dataset``."""
        return {"model_config": self.model_config, "data_config": self.data_config,
                "dataset": dataset}

    def merge(self, contributions: list[Contribution]) -> MergeResult:
        raise NotImplementedError

    def artefact_meta(self) -> dict[str, Any]:
        raise NotImplementedError
