"""scikit-learn estimators holding a federated gradient-boosted ensemble (``GBMModel.as_sklearn``).

Module-level classes, so a user can pickle them (and unpickle them where jupyter_fed is
installed). They predict like ``HistGradientBoostingClassifier`` / ``Regressor`` — ``predict``,
``predict_proba``, ``decision_function``, ``score``, ``classes_``, ``n_features_in_`` — and work
with ``sklearn.metrics``, scorers and ``sklearn.inspection.permutation_importance``. They are
trained by a federated session, not by ``fit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from jupyter_fed.packages.gbm import _loss
from jupyter_fed.packages.gbm._trees import Ensemble

__all__ = ["FederatedHistGradientBoostingClassifier", "FederatedHistGradientBoostingRegressor"]


class _Federated(BaseEstimator):
    """What both estimators share: the ensemble, the predictors, and input checks."""

    def __init__(self, learning_rate: float = 0.1, max_depth: int = 4, max_iter: int = 100,
                 max_bins: int = 255, min_samples_leaf: int = 20,
                 l2_regularization: float = 0.0) -> None:
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.max_iter = max_iter
        self.max_bins = max_bins
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization

    def _set_model(self, ensemble: Ensemble, predictors: list[str]) -> None:
        self.ensemble_ = ensemble
        self.n_features_in_ = len(predictors)
        self.feature_names_in_ = np.asarray(predictors, dtype=object)
        self.n_iter_ = ensemble.n_iter
        self.n_trees_per_iteration_ = ensemble.n_trees_per_iteration

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "ensemble_")

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Not available: this model was trained by a federated session (start a new one)."""
        raise NotImplementedError("a federated gbm model is trained by a session across runners; "
                                  "start another session to retrain it")

    @property
    def feature_importances_(self) -> np.ndarray:
        """Total split gain of each predictor over all trees, normalised to sum to 1."""
        return self.ensemble_.feature_importances()

    def _rows(self, X: Any) -> np.ndarray:
        if hasattr(X, "columns"):
            names = [str(c) for c in X.columns]
            wanted = [str(c) for c in self.feature_names_in_]
            if set(wanted) <= set(names):
                X = X[wanted]
            elif len(names) != self.n_features_in_:
                raise ValueError(f"X has columns {names[:5]}…, not the model's predictors")
        x = np.asarray(X, dtype=np.float64)
        if x.ndim == 1:
            raise ValueError("Expected a 2D array of rows × predictors, got a 1D array")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {x.shape[1]} features, but this model expects "
                             f"{self.n_features_in_}")
        return x

    def _raw_predict(self, X: Any) -> np.ndarray:
        return self.ensemble_.raw(self._rows(X))


class FederatedHistGradientBoostingClassifier(ClassifierMixin, _Federated):
    """A federated ``HistGradientBoostingClassifier``; classes are ``0 … n_classes-1``."""

    def _set_classes(self, n_classes: int) -> None:
        self.classes_ = np.arange(n_classes)
        self.n_classes_ = n_classes

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw scores: one column (binary) or one per class."""
        raw = self._raw_predict(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def predict_proba(self, X: Any) -> np.ndarray:
        return _loss.probabilities(self._raw_predict(X), self.n_classes_)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class FederatedHistGradientBoostingRegressor(RegressorMixin, _Federated):
    """A federated ``HistGradientBoostingRegressor`` (squared error)."""

    def predict(self, X: Any) -> np.ndarray:
        return self._raw_predict(X)[:, 0]
