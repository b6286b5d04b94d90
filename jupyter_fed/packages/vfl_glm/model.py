"""Kernel half of vfl_glm: what a finished session hands back.

A training session gives :class:`VflGlmModel`: the metrics per round, where each party's
coefficients stay (at its runner, under the session's id, which a prediction session uses) and,
only when the session set ``release_coefficients``, the coefficients themselves on the original
scale of each party's predictors. A prediction session gives the same class with
:attr:`VflGlmModel.prediction` set (:class:`~jupyter_fed.packages.splitnn.model.PredictionResult`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages.splitnn.model import PredictionResult
from jupyter_fed.packages.vfl_glm.config import parse

__all__ = ["VflGlmModel", "show"]


class VflGlmModel:
    """A vfl_glm session's outcome (see the module docstring)."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.tensors = tensors
        self.config, self.data_config = parse(meta["model_config"], meta["data_config"])
        self.label_client: str = str(meta.get("label_client", ""))
        self.runners: dict[str, str] = dict(meta.get("runners") or {})
        self.rows = int(meta.get("rows", 0))
        written = meta.get("prediction")
        self.prediction = PredictionResult(written) if written else None
        self.session_id: str = str(meta.get("session_id", ""))

    @property
    def coefficients_released(self) -> bool:
        return "intercept" in self.tensors

    def coefficients(self) -> dict[str, float]:
        """``{"intercept": …, column: coefficient, …}`` on the predictors' original scale (the
        intercept includes every passive party's centring offset)."""
        from jupyter_fed.errors import PermissionDenied

        if not self.coefficients_released:
            raise PermissionDenied("this session's coefficients stayed at the parties",
                                   "train with release_coefficients: true, or predict with a "
                                   "vfl_mode='predict' session")
        out = {"intercept": float(self.tensors["intercept"][0]) + sum(
            float(v[0]) for k, v in self.tensors.items() if k.startswith("offset/"))}
        for client, data in self.data_config.clients.items():
            out.update(zip(data.predictors, map(float, self.tensors[f"coef/{client}"]),
                           strict=True))
        return out

    def __repr__(self) -> str:
        if self.prediction is not None:
            return (f"VFL-GLM predictions: {self.prediction.rows:,} rows at "
                    f"{self.prediction.client} ({self.prediction.runner})")
        parties = ", ".join(f"{c} ({r})" for c, r in self.runners.items())
        return (f"VflGlmModel({self.config.ml_task.type}, {self.rows:,} linked rows; label party "
                f"{self.label_client}; coefficients "
                f"{'in this artefact' if self.coefficients_released else 'at ' + parties})")


def show(results: Any) -> list[Any]:
    """How ``%%federate vfl_glm`` shows a finished session."""
    if results.prediction is not None:
        return [repr(results), dict(results.prediction) if results.prediction.readable
                else results.prediction.reason]
    history = results.meta.get("history") or []
    return ["\n".join([repr(results)] + [
        f"model {i + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(m.items()))
        for i, m in enumerate(history)])]
