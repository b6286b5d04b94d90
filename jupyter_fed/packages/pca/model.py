"""Kernel half of pca: the federated axes, as numpy, a torch module, or a fitted scikit-learn PCA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from sklearn.decomposition import PCA

__all__ = ["PCAModel"]


class PCAModel:
    """Principal axes of the pooled rows of every silo.

    Attributes follow scikit-learn's ``PCA``: ``components_`` (components × features, rows are
    unit axes), ``explained_variance_``, ``explained_variance_ratio_``, ``singular_values_``,
    ``mean_``, ``noise_variance_``, ``n_samples_``; ``feature_names`` are the predictors in order.
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.arrays, self.meta = arrays, meta
        self.components_ = np.asarray(arrays["components"], np.float64)
        self.explained_variance_ = np.asarray(arrays["explained_variance"], np.float64)
        self.explained_variance_ratio_ = np.asarray(arrays["explained_variance_ratio"], np.float64)
        self.singular_values_ = np.asarray(arrays["singular_values"], np.float64)
        self.mean_ = np.asarray(arrays["mean"], np.float64)
        self.noise_variance_ = float(np.asarray(arrays["noise_variance"]).reshape(-1)[0])
        self.n_samples_ = int(meta["n_samples"])
        self.feature_names: list[str] = list(meta["columns"])
        self.whiten = bool(meta.get("whiten"))

    @property
    def n_components_(self) -> int:
        return len(self.components_)

    def _rows(self, x: Any) -> np.ndarray:
        if hasattr(x, "loc"):
            x = x[self.feature_names].to_numpy(np.float64)
        return np.asarray(x, dtype=np.float64)

    def transform(self, x: Any) -> np.ndarray:
        """Rows (array, or a DataFrame indexed by the predictors' names) → component scores."""
        z = (self._rows(x) - self.mean_) @ self.components_.T
        return z / np.sqrt(self.explained_variance_) if self.whiten else z

    def inverse_transform(self, z: Any) -> np.ndarray:
        """Component scores → rows in feature space (the reconstruction)."""
        z = np.asarray(z, dtype=np.float64)
        if self.whiten:
            z = z * np.sqrt(self.explained_variance_)
        return z @ self.components_ + self.mean_

    def as_pytorch(self) -> torch.nn.Module:
        """A ``torch.nn.Module`` mapping features to components (float64); its ``state_dict()``
        holds ``components``, ``explained_variance``, ``explained_variance_ratio`` and ``mean``."""
        import torch

        from jupyter_fed.packages.pca._torch import PCAModule

        t = lambda a: torch.as_tensor(np.array(a), dtype=torch.float64)  # noqa: E731
        return PCAModule(t(self.components_), t(self.explained_variance_),
                         t(self.explained_variance_ratio_), t(self.mean_), self.whiten).eval()

    def as_sklearn(self) -> PCA:
        """A fitted ``sklearn.decomposition.PCA`` with these axes (``transform``,
        ``inverse_transform``, ``score`` and friends work as after ``fit`` on the pooled rows)."""
        from sklearn.decomposition import PCA

        est = PCA(n_components=self.n_components_, whiten=self.whiten)
        est.components_ = self.components_.copy()
        est.explained_variance_ = self.explained_variance_.copy()
        est.explained_variance_ratio_ = self.explained_variance_ratio_.copy()
        est.singular_values_ = self.singular_values_.copy()
        est.mean_ = self.mean_.copy()
        est.noise_variance_ = self.noise_variance_
        est.n_components_ = self.n_components_
        est.n_samples_ = self.n_samples_
        est.n_features_in_ = len(self.mean_)
        est._fit_svd_solver = "covariance_eigh"
        return est

    def __repr__(self) -> str:
        return (f"PCAModel({self.n_components_} of {len(self.feature_names)} axes, "
                f"{100 * self.explained_variance_ratio_.sum():.1f}% of the variance, "
                f"{self.n_samples_} rows{', whitened' if self.whiten else ''})")

    def _repr_html_(self) -> str:
        import pandas as pd

        frame = pd.DataFrame({"explained_variance": self.explained_variance_,
                              "ratio": self.explained_variance_ratio_,
                              "cumulative": np.cumsum(self.explained_variance_ratio_)},
                             index=[f"PC{i + 1}" for i in range(self.n_components_)])
        return f"<div><b>{self.__repr__()}</b></div>{frame.to_html(float_format=lambda v: f'{v:.4g}')}"
