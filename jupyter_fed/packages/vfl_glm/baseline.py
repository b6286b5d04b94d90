"""The central comparison: the pooled unpenalised GLM on the joined rows (statsmodels' IRLS).

What the issue measures vfl_glm against — the same model fitted where every column and the
target sit in one table. Falls back to scikit-learn's unpenalised logistic regression for data
the logistic family separates (statsmodels refuses those: the maximum-likelihood fit does not
exist, and only a comparison of predictions, such as the ROC AUC, is meaningful).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fit_pooled"]

FAMILIES = {"logistic": "Binomial", "normal": "Gaussian", "poisson": "Poisson", "gamma": "Gamma",
            "inverse_gaussian": "InverseGaussian"}


def fit_pooled(frame: Any, predictors: list[str], target: str, family: str) -> dict[str, float]:
    """``{"intercept": …, column: coefficient}`` of the pooled maximum-likelihood fit."""
    import warnings

    import statsmodels.api as sm

    x = sm.add_constant(frame[predictors].to_numpy(np.float64), has_constant="add")
    y = frame[target].to_numpy(np.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit = sm.GLM(y, x, family=getattr(sm.families, FAMILIES[family])()).fit(tol=1e-12,
                                                                                    maxiter=200)
        params = np.asarray(fit.params)
    except Exception:
        if family != "logistic":
            raise
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x[:, 1:])
        model = LogisticRegression(C=np.inf, max_iter=100_000, tol=1e-10).fit(
            scaler.transform(x[:, 1:]), y)
        coef = model.coef_[0] / scaler.scale_
        params = np.r_[model.intercept_[0] - float(coef @ scaler.mean_), coef]
    return {"intercept": float(params[0]), **dict(zip(predictors, map(float, params[1:]),
                                                      strict=True))}
