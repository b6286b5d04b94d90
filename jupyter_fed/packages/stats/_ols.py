"""Ordinary least squares from merged moments: the pooled fit, without the pooled rows.

With centred moments, OLS with an intercept is ``β = Sxx⁻¹ Sxy`` and ``β₀ = ȳ - x̄ᵀβ`` (``Sxx``,
``Sxy`` the centred cross-products); residual sum of squares, standard errors, t statistics and
R² follow from the same matrices. Centring keeps the normal equations as well conditioned as the
data allow, so the result matches ``numpy.linalg.lstsq`` on the pooled rows to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from jupyter_fed.packages.stats._moments import Stats

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OLSResult", "fit"]


@dataclass(frozen=True)
class OLSResult:
    """A linear regression fitted from statistics.

    Attributes
    ----------
    coefficients, std_errors, t_values, p_values
        Indexed by ``"intercept"`` then the predictors. p-values are two-sided, from Student's
        t with ``df_resid`` degrees of freedom (scipy when installed, else a normal approximation).
    r2, adj_r2
        Coefficient of determination, and adjusted for the number of predictors.
    sigma
        Residual standard error.
    """

    target: str
    coefficients: pd.Series
    std_errors: pd.Series
    t_values: pd.Series
    p_values: pd.Series
    r2: float
    adj_r2: float
    sigma: float
    n: int
    df_resid: int

    def table(self) -> pd.DataFrame:
        """Coefficients, standard errors, t and p, one row per term."""
        import pandas as pd

        return pd.DataFrame({"coef": self.coefficients, "std_err": self.std_errors,
                             "t": self.t_values, "p_value": self.p_values})

    def predict(self, x: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Predictions for rows of the predictors (a DataFrame is indexed by name)."""
        import pandas as pd

        names = list(self.coefficients.index[1:])
        rows = x[names].to_numpy(np.float64) if isinstance(x, pd.DataFrame) else np.asarray(x, np.float64)
        return self.coefficients.iloc[0] + rows @ self.coefficients.to_numpy()[1:]

    def _repr_html_(self) -> str:
        head = (f"<b>OLS</b> of <code>{self.target}</code> on {len(self.coefficients) - 1} "
                f"predictor(s): n = {self.n}, R² = {self.r2:.4f}, adjusted R² = {self.adj_r2:.4f}, "
                f"σ = {self.sigma:.4g}")
        return f"<div>{head}</div>{self.table().to_html(float_format=lambda v: f'{v:.4g}')}"


def _p_values(t: np.ndarray, df: int) -> np.ndarray:
    try:
        from scipy import stats
    except ImportError:  # normal approximation: fine for the large df federations usually have
        return np.array([math.erfc(abs(v) / math.sqrt(2.0)) for v in t])
    return 2.0 * stats.t.sf(np.abs(t), df)


def fit(s: Stats, target: str, predictors: list[str]) -> OLSResult:
    """Fit ``target ~ 1 + predictors`` from ``s``; raises ``ValueError`` when it cannot be done."""
    import pandas as pd

    if not predictors:
        raise ValueError("give at least one predictor")
    if target in predictors:
        raise ValueError(f"{target!r} is both the target and a predictor")
    idx = [s.index(c) for c in predictors]
    ti = s.index(target)
    m = s.total
    n, p = m.n, len(idx)
    sxx, sxy, syy = m.m2[np.ix_(idx, idx)], m.m2[idx, ti], m.m2[ti, ti]
    if not (np.isfinite(sxx).all() and np.isfinite(sxy).all() and np.isfinite(syy)):
        raise ValueError("some of these columns are withheld or missing at a silo: their "
                         "statistics are not defined")
    df = round(n) - p - 1
    if df <= 0:
        raise ValueError(f"{int(n)} rows are too few for {p} predictors and an intercept")
    if np.linalg.matrix_rank(sxx) < p:
        raise ValueError("the predictors are collinear (or one is constant)")
    inv = np.linalg.inv(sxx)
    beta = np.linalg.solve(sxx, sxy)
    xbar = m.mean[idx]
    intercept = m.mean[ti] - xbar @ beta
    rss = max(float(syy - sxy @ beta), 0.0)
    sigma2 = rss / df
    se = np.sqrt(np.concatenate([[sigma2 * (1.0 / n + xbar @ inv @ xbar)], sigma2 * np.diag(inv)]))
    coef = np.concatenate([[intercept], beta])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = coef / se
    names = ["intercept", *predictors]
    r2 = 1.0 - rss / syy if syy > 0 else float("nan")
    adj = 1.0 - (1.0 - r2) * (n - 1) / df
    return OLSResult(target, pd.Series(coef, names), pd.Series(se, names), pd.Series(t, names),
                     pd.Series(_p_values(t, df), names), float(r2), float(adj),
                     float(np.sqrt(sigma2)), round(n), df)
