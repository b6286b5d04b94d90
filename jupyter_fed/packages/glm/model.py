"""Kernel half of glm: the fitted model as coefficients, a torch module or a scikit-learn estimator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.packages.glm import _family
from jupyter_fed.packages.glm._weights import raw_coefficients

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = ["GLMModel"]


class GLMModel:
    """A generalized linear model a session produced (either solver).

    Attributes
    ----------
    coef_, intercept_
        Coefficients on the raw predictors (scikit-learn's names), whatever the solver.
    family, link
        ``ml_task.type`` and its link.
    std_err_
        Standard errors (Newton, unpenalised): ``sqrt(diag(φ I⁻¹))`` with the Fisher information
        at the estimate and ``φ`` the Pearson dispersion (1 for logistic and poisson), as
        statsmodels' GLM reports them; NaN otherwise.
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.arrays, self.meta = arrays, meta
        data = meta["data_config"]
        self.predictors: list[str] = list(data["predictors"])
        self.target: str = data["target"]
        self.family: str = meta["family"]
        self.link: str = meta["link"]
        self.alpha, self.l1_ratio = float(meta.get("alpha", 0.0)), float(meta.get("l1_ratio", 0.0))
        full = raw_coefficients(arrays, len(self.predictors))
        self.intercept_: float = float(full[0])
        self.coef_: np.ndarray = full[1:]
        se = arrays.get("std_err")
        self.std_err_: np.ndarray = np.asarray(se, np.float64) if se is not None else \
            np.full(len(full), np.nan)

    @property
    def solver(self) -> str:
        return str(self.meta.get("solver", ""))

    @property
    def converged(self) -> bool:
        return bool(self.meta.get("converged", True))

    def _rows(self, x: Any) -> np.ndarray:
        if hasattr(x, "loc"):
            x = x[self.predictors].to_numpy(np.float64)
        return np.asarray(x, dtype=np.float64)

    def linear_predictor(self, x: Any) -> np.ndarray:
        return self.intercept_ + self._rows(x) @ self.coef_

    def predict(self, x: Any) -> np.ndarray:
        """The mean response ``μ`` for local rows (the probability of 1 for logistic)."""
        return _family.inverse_link(self.link, self.linear_predictor(x))

    def summary(self) -> pd.DataFrame:
        """Coefficients, standard errors, z/t, p-values and 95% intervals (Newton, unpenalised),
        with statsmodels' GLM conventions (z statistics from the normal distribution)."""
        import pandas as pd
        from scipy import stats

        coef = np.concatenate([[self.intercept_], self.coef_])
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = coef / self.std_err_
        dist = stats.norm
        crit = dist.isf(0.025)
        return pd.DataFrame({"coef": coef, "std_err": self.std_err_, "statistic": stat,
                             "p_value": 2 * dist.sf(np.abs(stat)),
                             "ci_lower": coef - crit * self.std_err_,
                             "ci_upper": coef + crit * self.std_err_},
                            index=pd.Index(["intercept", *self.predictors], name="term"))

    def as_pytorch(self) -> torch.nn.Module:
        """A ``torch.nn.Module`` (float64) mapping raw predictors to ``μ`` of shape ``(n, 1)``."""
        import torch

        from jupyter_fed.packages.glm._torch import GLMModule

        coef = torch.as_tensor(np.concatenate([[self.intercept_], self.coef_]), dtype=torch.float64)
        return GLMModule(coef, self.link).eval()

    def as_sklearn(self) -> Any:
        """The equivalent fitted scikit-learn estimator (``predict``, ``predict_proba``, ``score``).

        ``LogisticRegression`` (``C = 1 / (alpha·n)``), ``LinearRegression`` / ``Ridge``
        (``alpha·n``) / ``ElasticNet``, ``PoissonRegressor``, ``GammaRegressor``, or
        ``TweedieRegressor(power=3)`` for the inverse Gaussian — all with this model's
        coefficients. Links scikit-learn has no estimator for raise ``NotImplementedError``.
        """
        from jupyter_fed.packages.glm._sklearn import estimator

        return estimator(self)

    def __repr__(self) -> str:
        return (f"GLMModel({self.family}, {self.link} link, {len(self.predictors)} predictor(s), "
                f"{self.solver} solver{'' if self.converged else ', NOT converged'})")
