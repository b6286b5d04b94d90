"""The central comparison: the pooled unpenalised GLM on the joined rows (scikit-learn).

What the issue measures vfl_glm against — the same model fitted where every column and the
target sit in one table, by scikit-learn's Newton–Cholesky solver (an independent
implementation), on standardised columns, converted back to the original scale. For data the
logistic family separates the maximum-likelihood fit does not exist; the solver then stops
somewhere along the separating direction and only a comparison of predictions (the ROC AUC) is
meaningful.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["fit_pooled"]


def _estimator(family: str) -> Any:
    from sklearn import linear_model as lm

    common = {"alpha": 0.0, "solver": "newton-cholesky", "max_iter": 1000, "tol": 1e-12}
    if family == "logistic":
        return lm.LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=1000,
                                     tol=1e-12)
    if family == "normal":
        return lm.LinearRegression()
    if family == "poisson":
        return lm.PoissonRegressor(**common)
    if family == "gamma":
        return lm.GammaRegressor(**common)
    return lm.TweedieRegressor(power=3, link="log", **common)


def fit_pooled(frame: Any, predictors: list[str], target: str, family: str) -> dict[str, float]:
    """``{"intercept": …, column: coefficient}`` of the pooled maximum-likelihood fit (default
    links: logit, identity, log)."""
    x = frame[predictors].to_numpy(np.float64)
    y = frame[target].to_numpy(np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _estimator(family).fit((x - mean) / scale, y)
    coef = np.ravel(model.coef_) / scale
    intercept = float(np.ravel([model.intercept_])[0]) - float(coef @ mean)
    return {"intercept": intercept, **dict(zip(predictors, map(float, coef), strict=True))}
