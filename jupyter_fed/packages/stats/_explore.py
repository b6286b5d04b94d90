"""The exploration functions of the SymetryML reference, on one set of statistics.

The same class answers a contract at the runner (its own statistics), at the coordinator (a
received contribution) and in the kernel (merged or per-peer results). Every function returns NaN
where it is not defined — too few rows, a zero variance, a column that is not binary, a group the
silo withheld — and raises ``KeyError`` only for a column the statistics do not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.contracts import Contract, ContractReport, evaluate, lookup, parse_contract
from jupyter_fed.packages.stats._moments import CondMoments, Moments, Stats

if TYPE_CHECKING:
    import pandas as pd

    from jupyter_fed.packages.stats._ols import OLSResult

__all__ = ["StatsView"]

NAN = float("nan")


def _var(m: Moments | CondMoments, j: int, unbiased: bool) -> float:
    dof = m.n - (1 if unbiased else 0)
    return float(m.ss[j] / dof) if dof > 0 else NAN


class StatsView:
    """Univariate, bivariate and conditional statistics of one silo, or of several merged."""

    def __init__(self, stats: Stats) -> None:
        self._s = stats

    # basics ---------------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return list(self._s.columns)

    @property
    def n(self) -> int:
        """Rows behind these statistics."""
        return round(self._s.total.n)

    @property
    def binary(self) -> list[str]:
        """Columns whose values are all 0 or 1 (those the conditional functions accept)."""
        return list(self._s.binary)

    def _j(self, column: str) -> int:
        return self._s.index(column)

    @property
    def private(self) -> dict[str, float] | None:
        """``None`` for exact statistics; what a differentially private answer cost."""
        return self._s.private

    def _cond(self, column: str, by: str, complement: bool) -> CondMoments | None:
        self._j(column)
        self._j(by)
        block = self._s.cond.get(by)
        if block is None or self._s.count[self._j(column)] != self._s.total.n:
            return None
        return block.complement(self._s.total) if complement else block

    def _stat(self, kind: str, m: Moments | CondMoments | None, column: str) -> float:
        if m is None:
            return NAN
        j = self._j(column)
        if kind == "count":  # a binary column is counted where it is 1 (SymetryML's convention)
            if column in self._s.binary:
                ones = m.n * m.mean[j] if m.n > 0 else 0.0
                return float(np.rint(ones)) if np.isfinite(ones) else NAN
            return float(m.n)
        if kind == "mean":
            return float(m.mean[j]) if m.n > 0 else NAN
        var = _var(m, j, unbiased=kind.endswith("_unbiased"))
        if kind.startswith("stddev"):
            return float(np.sqrt(max(var, 0.0))) if not np.isnan(var) else NAN
        return var

    # univariate -----------------------------------------------------------------------------
    def count(self, column: str) -> float:
        """How many times ``column`` was seen: rows where a binary column is 1, else its rows."""
        j = self._j(column)
        if column in self._s.binary:
            ones = self._s.total.n * self._s.total.mean[j]
            return float(np.rint(ones)) if np.isfinite(ones) else NAN
        return float(self._s.count[j])

    def rows(self, column: str) -> float:
        """Rows in which ``column`` was present, whatever its value (``ROWS`` in contracts)."""
        return float(self._s.count[self._j(column)])

    def mean(self, column: str) -> float:
        return self._stat("mean", self._s.total, column)

    def variance(self, column: str) -> float:
        """Variance, dividing by n."""
        return self._stat("variance", self._s.total, column)

    def stddev(self, column: str) -> float:
        return self._stat("stddev", self._s.total, column)

    def variance_unbiased(self, column: str) -> float:
        """Variance, dividing by n - 1."""
        return self._stat("variance_unbiased", self._s.total, column)

    def stddev_unbiased(self, column: str) -> float:
        return self._stat("stddev_unbiased", self._s.total, column)

    # bivariate ------------------------------------------------------------------------------
    def covar(self, a: str, b: str, unbiased: bool = False) -> float:
        """Covariance of two columns (dividing by n, or by n - 1 with ``unbiased``)."""
        m, dof = self._s.total, self._s.total.n - (1 if unbiased else 0)
        return float(m.m2[self._j(a), self._j(b)] / dof) if dof > 0 else NAN

    def lincorr(self, a: str, b: str) -> float:
        """Pearson correlation; NaN if either column is constant."""
        i, j, m2 = self._j(a), self._j(b), self._s.total.m2
        denom = np.sqrt(m2[i, i] * m2[j, j])
        return float(np.clip(m2[i, j] / denom, -1.0, 1.0)) if denom > 0 else NAN

    # conditional: rows where `by` is 1 (cond_*) or 0 (compl_cond_*) ----------------------------
    def cond_count(self, column: str, by: str) -> float:
        return self._stat("count", self._cond(column, by, False), column)

    def cond_mean(self, column: str, by: str) -> float:
        return self._stat("mean", self._cond(column, by, False), column)

    def cond_variance(self, column: str, by: str) -> float:
        return self._stat("variance", self._cond(column, by, False), column)

    def cond_stddev(self, column: str, by: str) -> float:
        return self._stat("stddev", self._cond(column, by, False), column)

    def cond_variance_unbiased(self, column: str, by: str) -> float:
        return self._stat("variance_unbiased", self._cond(column, by, False), column)

    def cond_stddev_unbiased(self, column: str, by: str) -> float:
        return self._stat("stddev_unbiased", self._cond(column, by, False), column)

    def compl_cond_count(self, column: str, by: str) -> float:
        return self._stat("count", self._cond(column, by, True), column)

    def compl_cond_mean(self, column: str, by: str) -> float:
        return self._stat("mean", self._cond(column, by, True), column)

    def compl_cond_variance(self, column: str, by: str) -> float:
        return self._stat("variance", self._cond(column, by, True), column)

    def compl_cond_stddev(self, column: str, by: str) -> float:
        return self._stat("stddev", self._cond(column, by, True), column)

    def compl_cond_variance_unbiased(self, column: str, by: str) -> float:
        return self._stat("variance_unbiased", self._cond(column, by, True), column)

    def compl_cond_stddev_unbiased(self, column: str, by: str) -> float:
        return self._stat("stddev_unbiased", self._cond(column, by, True), column)

    def mean_when_true(self, column: str, by: str) -> float:
        return self.cond_mean(column, by)

    def mean_when_false(self, column: str, by: str) -> float:
        return self.compl_cond_mean(column, by)

    def pct_of_true(self, a: str, b: str) -> float:
        """Percentage (0-100) of the rows where ``b`` is 1 in which ``a`` is 1 too."""
        return 100.0 * self.cond_mean(a, b) if a in self._s.binary else NAN

    def pct_of_false(self, a: str, b: str) -> float:
        """Percentage (0-100) of the rows where ``b`` is 0 in which ``a`` is 1."""
        return 100.0 * self.compl_cond_mean(a, b) if a in self._s.binary else NAN

    def num_occurence_when_true(self, a: str, b: str) -> float:
        """Rows where both ``a`` and ``b`` are 1."""
        return self.cond_count(a, b) if a in self._s.binary else NAN

    def num_occurence_when_false(self, a: str, b: str) -> float:
        """Rows where ``a`` is 1 and ``b`` is 0."""
        return self.compl_cond_count(a, b) if a in self._s.binary else NAN

    # by name, for contracts -------------------------------------------------------------------
    def statistic(self, func: str, args: Sequence[str]) -> float:
        """A reference function by name, e.g. ``statistic("COND_MEAN", ["x0", "y"])``."""
        fn = lookup(func)
        if fn is None or len(args) != fn.arity:
            raise ValueError(f"unknown function {func!r} or wrong number of columns")
        return getattr(self, fn.name.lower())(*args)

    def evaluate_contract(self, contract: str | Contract) -> ContractReport:
        """Check a PSR contract against these statistics (which rules hold, not the values)."""
        return evaluate(parse_contract(contract) if isinstance(contract, str) else contract, self)

    # tables ---------------------------------------------------------------------------------
    def sums(self) -> pd.Series:
        """Column sums ``Xᵀ1``."""
        import pandas as pd

        return pd.Series(self._s.total.sums, index=self.columns, name="sum")

    def xtx(self) -> pd.DataFrame:
        """The cross-product matrix ``XᵀX``."""
        import pandas as pd

        return pd.DataFrame(self._s.total.xtx, index=self.columns, columns=self.columns)

    def covariance_matrix(self, unbiased: bool = False) -> pd.DataFrame:
        import pandas as pd

        dof = self._s.total.n - (1 if unbiased else 0)
        cov = self._s.total.m2 / dof if dof > 0 else np.full_like(self._s.total.m2, np.nan)
        return pd.DataFrame(cov, index=self.columns, columns=self.columns)

    def correlation_matrix(self) -> pd.DataFrame:
        """Pearson correlations of every pair of columns (NaN for constant or withheld ones)."""
        import pandas as pd

        m2 = self._s.total.m2
        sd = np.sqrt(np.diag(m2))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.clip(m2 / np.outer(sd, sd), -1.0, 1.0)
        corr[~np.isfinite(corr)] = np.nan
        return pd.DataFrame(corr, index=self.columns, columns=self.columns)

    def describe(self) -> pd.DataFrame:
        """rows, count (1s of a binary column), mean, std (n - 1), variance (n - 1), binary."""
        import pandas as pd

        rows: dict[str, dict[str, Any]] = {
            c: {"rows": self.rows(c), "count": self.count(c), "mean": self.mean(c),
                "std": self.stddev_unbiased(c), "variance": self.variance_unbiased(c),
                "binary": c in self._s.binary}
            for c in self.columns}
        return pd.DataFrame.from_dict(rows, orient="index")

    def ols(self, target: str, predictors: Sequence[str]) -> OLSResult:
        """Least squares of ``target`` on ``predictors`` (plus an intercept), from the moments.

        Equal to fitting the pooled rows; see :class:`~jupyter_fed.packages.stats._ols.OLSResult`.
        """
        from jupyter_fed.packages.stats._ols import fit

        return fit(self._s, target, list(predictors))
