"""Dataset influence for vfl_glm, at the label party: each party's Shapley value, every round.

The linear predictor is the intercept plus one partial linear predictor per party (each party's
standardised columns times its coefficients). A coalition's loss is the mean validation deviance
with the parties outside it *masked*: their partial predictor set to zero, which is its mean over
the training rows (every party centres its columns on its own training means), so the empty
coalition is the intercept-only model. The label party already holds every party's partial
predictor on the validation rows (the round's metrics need them): no extra exchange, and only one
number per party leaves. See :mod:`jupyter_fed.packages._valuation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages._valuation import shapley
from jupyter_fed.packages.vfl_glm import _solve
from jupyter_fed.packages.vfl_glm.config import VflGlmConfig

__all__ = ["influence"]


def influence(cfg: VflGlmConfig, clients: list[str], parts: list[np.ndarray], intercept: float,
              y: np.ndarray, seed: int) -> dict[str, Any]:
    """Shapley values of ``clients`` (partial predictors ``parts`` on the validation rows, in
    order) for the fall in mean deviance (half of it for the logistic family, its log-loss)."""
    family, link = cfg.ml_task.type, cfg.ml_task.link
    half = 2.0 if family == "logistic" else 1.0

    def loss(coalition: frozenset[int]) -> float:
        eta = np.full(len(y), float(intercept))
        for i in coalition:
            eta = eta + parts[i]
        return _solve.deviance(family, link, y, eta) / (half * max(len(y), 1))

    params = cfg.influence_score.params
    found = shapley(clients, loss, rel_thresh=params.rel_thresh,
                    max_eval_len=params.max_eval_len, seed=seed)
    if not all(np.isfinite(v) for v in found.values.values()):
        return {}  # a masked predictor left the family's range (a non-canonical link)
    return {"values": found.values, "method": found.method, "evaluations": found.evaluations,
            "baseline_loss": found.baseline_loss, "loss": found.loss}
