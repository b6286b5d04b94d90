"""Kernel half of linear_inference: the bundle of fitted models, their tests and predictions.

``session.model()`` returns a :class:`LinearInferenceModel`; ``.as_pytorch()`` gives the same
bundle as a ``torch.nn.Module`` (the reference SDK's object: callable on ``(n, shared + chunked)``
tensors, with ``p_values()`` and ``summary()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = ["LinearInferenceModel"]


class LinearInferenceModel:
    """One fitted regression per chunked predictor: ``target ~ 1 + shared + chunked[j]``.

    Parameters
    ----------
    arrays
        ``coef`` and ``std_err`` (models × terms); OLS adds ``sigma2`` and ``r2`` per model.
    meta
        Column names, ``n``, ``df_resid``, ``logistic``, iterations and convergence.

    Tests are those of statsmodels: z (normal) for the logit, t with ``n - p`` degrees of freedom
    for OLS; confidence intervals at ``1 - alpha`` (``model_config.alpha``, default 0.05).
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.arrays, self.meta = arrays, meta
        cols = meta.get("columns") or {}
        self.target: str = cols.get("target", "")
        self.shared: list[str] = list(cols.get("shared", []))
        self.chunked: list[str] = list(cols.get("chunked", []))
        self.logistic: bool = bool(meta.get("logistic"))
        self.coef: np.ndarray = np.asarray(arrays["coef"], dtype=np.float64)
        self.std_err: np.ndarray = np.asarray(arrays["std_err"], dtype=np.float64)
        self.alpha: float = float((meta.get("model_config") or {}).get("alpha", 0.05))

    # statistics -----------------------------------------------------------------------------
    @property
    def converged(self) -> bool:
        return bool(self.meta.get("converged", True))

    @property
    def statistic_name(self) -> str:
        return "z" if self.logistic else "t"

    def _tests(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Statistics, two-sided p-values and the critical value, for every model and term."""
        from scipy import stats

        with np.errstate(divide="ignore", invalid="ignore"):
            stat = self.coef / self.std_err
        if self.logistic:
            return stat, 2.0 * stats.norm.sf(np.abs(stat)), stats.norm.isf(self.alpha / 2)
        df = int(self.meta["df_resid"])
        return stat, 2.0 * stats.t.sf(np.abs(stat), df), stats.t.isf(self.alpha / 2, df)

    def terms(self, predictor: str) -> list[str]:
        """Names of the terms of ``predictor``'s model: intercept, shared, then ``predictor``."""
        return ["intercept", *self.shared, predictor]

    def _index(self, predictor: str | int) -> int:
        if isinstance(predictor, int):
            return predictor
        try:
            return self.chunked.index(predictor)
        except ValueError:
            raise KeyError(f"{predictor!r} is not a chunked predictor of this model "
                           f"(chunked: {', '.join(self.chunked[:10])}"
                           f"{', …' if len(self.chunked) > 10 else ''})") from None

    def p_values(self) -> pd.Series:
        """p-value of each chunked predictor's coefficient in its own model, by predictor."""
        import pandas as pd

        return pd.Series(self._tests()[1][:, -1], index=self.chunked, name="p_value")

    def summary(self, predictor: str | int) -> pd.DataFrame:
        """Coefficient, standard error, z (logit) or t (OLS), p-value and confidence interval of
        every term of ``predictor``'s model."""
        import pandas as pd

        j = self._index(predictor)
        stat, p, crit = self._tests()
        coef, se = self.coef[j], self.std_err[j]
        return pd.DataFrame({"coef": coef, "std_err": se, self.statistic_name: stat[j],
                             "p_value": p[j], "ci_lower": coef - crit * se,
                             "ci_upper": coef + crit * se},
                            index=pd.Index(self.terms(self.chunked[j]), name="term"))

    def as_dataframe(self) -> pd.DataFrame:
        """Every model's summary in one frame, indexed by (chunked predictor, term)."""
        import pandas as pd

        stat, p, crit = self._tests()
        rows = [(name, term) for name in self.chunked for term in self.terms(name)]
        flat = {"coef": self.coef.ravel(), "std_err": self.std_err.ravel(),
                self.statistic_name: stat.ravel(), "p_value": p.ravel(),
                "ci_lower": (self.coef - crit * self.std_err).ravel(),
                "ci_upper": (self.coef + crit * self.std_err).ravel()}
        return pd.DataFrame(flat, index=pd.MultiIndex.from_tuples(rows, names=["predictor", "term"]))

    # predictions ----------------------------------------------------------------------------
    def _matrix(self, x: Any) -> np.ndarray:
        if hasattr(x, "loc"):
            x = x[[*self.shared, *self.chunked]].to_numpy(np.float64)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.shared) + len(self.chunked):
            raise ValueError(f"expected rows of {len(self.shared)} shared then "
                             f"{len(self.chunked)} chunked predictors, got shape {x.shape}")
        return x

    def predict(self, x: Any) -> np.ndarray:
        """``(n_samples, n_chunked)``: column ``j`` is model ``j``'s prediction (a probability for
        the logit). ``x`` holds the shared then the chunked predictors (a DataFrame by name)."""
        x = self._matrix(x)
        k = len(self.shared)
        eta = self.coef[:, 0] + x[:, :k] @ self.coef[:, 1:k + 1].T + x[:, k:] * self.coef[:, -1]
        return 1.0 / (1.0 + np.exp(-eta)) if self.logistic else eta

    def as_pytorch(self) -> torch.nn.Module:
        """The bundle as a ``torch.nn.Module`` (float64): ``module(x)`` is :meth:`predict`, and
        ``p_values()`` / ``summary()`` / ``as_dataframe()`` are there too, as in the reference."""
        from jupyter_fed.packages.linear_inference._torch import BundleModule

        return BundleModule(self).eval()

    def __repr__(self) -> str:
        kind = "logit" if self.logistic else "OLS"
        return (f"LinearInferenceModel({len(self.chunked)} {kind} model(s) of {self.target!r} on "
                f"{len(self.shared)} shared predictor(s) + one chunked predictor each, "
                f"n = {self.meta.get('n')}, {'converged' if self.converged else 'NOT converged'})")

    def _repr_html_(self) -> str:
        head = self.__repr__().replace("<", "&lt;")
        table = self.p_values().sort_values().head(20).to_frame().to_html(
            float_format=lambda v: f"{v:.4g}")
        return f"<div><b>{head}</b></div><div>smallest p-values:</div>{table}"
