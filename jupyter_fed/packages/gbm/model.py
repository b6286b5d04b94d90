"""Kernel half of gbm: the boosted trees a session produced, rebuilt from safetensors + JSON."""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages.gbm import _loss
from jupyter_fed.packages.gbm._trees import Ensemble
from jupyter_fed.packages.gbm.config import parse

__all__ = ["GBMModel"]


class GBMModel:
    """A federated histogram gradient-boosting model.

    Attributes
    ----------
    n_iter_
        Boosting iterations in the model (the best one's with ``save_best_model``).
    n_classes
        Classes (labels ``0 … n_classes-1``); 1 for regression.
    feature_importances_
        Total split gain per predictor, normalised to sum to 1 (scikit-learn's
        ``HistGradientBoosting*`` has none; this is the usual gain importance).
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.arrays, self.meta = arrays, meta
        self.config, self.data_config = parse(meta["model_config"], meta["data_config"])
        self.predictors: list[str] = list(self.data_config.predictors)
        self.target: str = self.data_config.target
        self.n_classes = int(meta.get("n_classes", 1))
        self.ensemble = Ensemble.from_tensors(arrays, self.config.params.max_depth)

    @property
    def classification(self) -> bool:
        return self.config.classification

    @property
    def n_iter_(self) -> int:
        return self.ensemble.n_iter

    @property
    def round(self) -> int:
        return int(self.meta.get("round", -1))

    @property
    def feature_importances_(self) -> np.ndarray:
        return self.ensemble.feature_importances()

    def _rows(self, x: Any) -> np.ndarray:
        if hasattr(x, "loc"):
            x = x[self.predictors].to_numpy(np.float64)
        return np.asarray(x, dtype=np.float64)

    def predict(self, x: Any) -> np.ndarray:
        """Class probabilities (classification) or predictions (regression) for local rows."""
        raw = self.ensemble.raw(self._rows(x))
        return _loss.probabilities(raw, self.n_classes) if self.classification else raw[:, 0]

    def as_sklearn(self) -> Any:
        """A fitted scikit-learn estimator with this ensemble:
        :class:`~jupyter_fed.packages.gbm.estimator.FederatedHistGradientBoostingClassifier` or
        ``…Regressor`` (``predict``, ``predict_proba``, ``score``, ``classes_``,
        ``feature_importances_``; picklable; works with ``sklearn.metrics`` and
        ``sklearn.inspection``)."""
        from jupyter_fed.packages.gbm import estimator

        p = self.config.params
        kind = estimator.FederatedHistGradientBoostingClassifier if self.classification \
            else estimator.FederatedHistGradientBoostingRegressor
        est = kind(learning_rate=p.learning_rate, max_depth=p.max_depth,
                   max_iter=self.ensemble.n_iter, max_bins=p.max_bins,
                   min_samples_leaf=p.min_samples_leaf, l2_regularization=p.l2_regularization)
        est._set_model(self.ensemble, self.predictors)
        if isinstance(est, estimator.FederatedHistGradientBoostingClassifier):
            est._set_classes(self.n_classes)
        return est

    def as_pytorch(self) -> Any:
        """Not offered: gbm's model is an ensemble of trees, which has no torch module form."""
        raise NotImplementedError("gbm models are tree ensembles and have no PyTorch form; use "
                                  "as_sklearn() (predict, predict_proba) or predict()")

    def __repr__(self) -> str:
        task = f"{self.n_classes} classes" if self.classification else "regression"
        return (f"GBMModel({self.n_iter_} iteration(s) of depth {self.config.params.max_depth}, "
                f"{task}, {len(self.predictors)} predictors)")
