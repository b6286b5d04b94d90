"""A GLM's coefficients in the matching scikit-learn estimator, set as ``fit`` would leave them.

The penalty maps exactly: glm minimises ``D/(2n) + α·l1·‖w‖₁ + α(1-l1)/2·‖w‖²``, which is the
objective of scikit-learn's GLM regressors and ``ElasticNet`` with the same ``alpha``, of ``Ridge``
with ``alpha·n`` and of ``LogisticRegression`` with ``C = 1/(alpha·n)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jupyter_fed.packages.glm.model import GLMModel


def _make(model: GLMModel) -> Any:
    from sklearn import linear_model as lm

    fam, link, alpha, l1 = model.family, model.link, model.alpha, model.l1_ratio
    n = int(model.meta.get("n") or 0) or None
    if fam == "logistic":
        if alpha == 0:
            return lm.LogisticRegression(C=np.inf)
        if n is None:
            raise NotImplementedError("the penalised logistic model needs the training row count")
        return lm.LogisticRegression(C=1.0 / (alpha * n), l1_ratio=l1,
                                     solver="saga" if l1 > 0 else "lbfgs")
    if l1 > 0 and alpha > 0:
        if fam == "normal" and link == "identity":
            return lm.ElasticNet(alpha=alpha, l1_ratio=l1)
        raise NotImplementedError(f"scikit-learn has no L1-penalised {fam} regressor")
    if fam == "normal" and link == "identity":
        if alpha == 0:
            return lm.LinearRegression()
        if n is None:
            raise NotImplementedError("the ridge model needs the training row count")
        return lm.Ridge(alpha=alpha * n)
    if fam == "poisson" and link == "log":
        return lm.PoissonRegressor(alpha=alpha)
    if fam == "gamma" and link == "log":
        return lm.GammaRegressor(alpha=alpha)
    power = {"normal": 0, "poisson": 1, "gamma": 2, "inverse_gaussian": 3}[fam]
    if link not in ("log", "identity"):
        raise NotImplementedError(f"scikit-learn has no {fam} regressor with the {link} link")
    return lm.TweedieRegressor(power=power, link=link, alpha=alpha)


def estimator(model: GLMModel) -> Any:
    est = _make(model)
    width = len(model.coef_)
    est.n_features_in_ = width
    est.n_iter_ = np.array([int(model.meta.get("iterations", 0))]) if model.family == "logistic" \
        else int(model.meta.get("iterations", 0))
    if model.family == "logistic":
        est.classes_ = np.array([0, 1])
        est.coef_ = model.coef_.reshape(1, width).copy()
        est.intercept_ = np.array([model.intercept_])
        return est
    est.coef_ = model.coef_.copy()
    est.intercept_ = float(model.intercept_)
    if hasattr(est, "_get_loss"):  # scikit-learn's GLMs predict through their loss's link
        est._base_loss = est._get_loss()
    return est
