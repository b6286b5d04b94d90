"""Kernel half of vfl_gbm: what a finished session hands back (never a threshold or a row).

A training session gives :class:`VflGbmModel`: the metrics per tree, the trees' shape (which
party's which column splits each node), gains, leaf values and row counts, feature importances,
and the bytes exchanged per tree. Influence scores come with the session's metrics
(``session.influence_scores()``) and SHAP importance with its artefact
(``session.feature_importance_scores()``), as for the other vertical packages. The thresholds
stay at the parties whose columns they split, so the model predicts only through a prediction
session (``training_session_id``), whose :attr:`VflGbmModel.prediction` says where the label
party's runner wrote the predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages.splitnn.model import PredictionResult

__all__ = ["VflGbmModel", "show"]


class VflGbmModel:
    """A vfl_gbm session's outcome (see the module docstring)."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.tensors = tensors
        self.label_client: str = str(meta.get("label_client", ""))
        self.runners: dict[str, str] = dict(meta.get("runners") or {})
        self.rows = int(meta.get("rows", 0))
        self.columns: dict[str, list[str]] = dict(meta.get("columns") or {})
        self.history: list[dict[str, float]] = list(meta.get("history") or [])
        self.bytes_per_tree: list[int] = list(meta.get("bytes_per_tree") or [])
        written = meta.get("prediction")
        self.prediction = PredictionResult(written) if written else None

    @property
    def n_trees(self) -> int:
        return int(self.tensors["trees.feature"].shape[0]) if "trees.feature" in self.tensors \
            else 0

    def feature_names(self) -> list[str]:
        """``client:column`` of every column, in the trees' global order."""
        return [f"{c}:{x}" for c, cols in self.columns.items() for x in cols]

    def feature_importances(self) -> dict[str, float]:
        """Total split gain per column, normalised to sum to 1 (the reference's
        ``feature_importance``; computed from the released gains, no data)."""
        names = self.feature_names()
        f = self.tensors.get("trees.feature", np.zeros(0, np.int32)).ravel()
        gain = self.tensors.get("trees.gain", np.zeros(0)).ravel()
        inner = f >= 0
        total = np.bincount(f[inner], weights=gain[inner], minlength=len(names))
        s = total.sum()
        return dict(zip(names, (total / s if s > 0 else total).tolist(), strict=True))

    def __repr__(self) -> str:
        if self.prediction is not None:
            return (f"VflGbm predictions: {self.prediction.rows:,} rows at "
                    f"{self.prediction.client} ({self.prediction.runner})")
        return (f"VflGbmModel({self.n_trees} trees over {self.rows:,} linked rows; label party "
                f"{self.label_client}; thresholds at their parties)")


def show(results: Any) -> list[Any]:
    """How ``%%federate vfl_gbm`` shows a finished session."""
    if results.prediction is not None:
        return [repr(results), dict(results.prediction) if results.prediction.readable
                else results.prediction.reason]
    lines = [repr(results)] + [
        f"tree {i + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(m.items()))
        for i, m in enumerate(results.history)]
    return ["\n".join(lines)]
