"""Kernel half of EDA intersect mode: individual mode's views, plus pairs of columns.

``results["active"]["x0"]`` is a column of one party (on the linked rows); with a column of
another party that was paired with it::

    results.plot_hist(a, b)            # 2D histogram (noisy counts)
    results.corr(a, b)                 # Pearson correlation from noisy moments
    (a + b).plot_hist(); (a / b).mean()
    results.groupby(a)[b].mean()       # b's mean in each of a's groups

Every number comes from what the runners released with DP noise. ``corr`` and the means of
``a + b``, ``a - b`` and ``a * b`` use the released sums (exact up to noise and clipping to the
released bounds); the histograms of ``a op b`` are derived from the 2D histogram (see
:mod:`._derive` for the approximation).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.eda.model import EdaColumn, EdaDataset, EdaResults
from jupyter_fed.packages.eda_intersect._derive import derive

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["IntersectColumn", "IntersectResults", "OpResult", "PairView"]


class IntersectColumn(EdaColumn):
    """A column of one party on the intersection; combines with paired columns of others."""

    def __init__(self, name: str, data: dict[str, Any], dataset: str,
                 results: IntersectResults) -> None:
        super().__init__(name, data)
        self.dataset, self._results = dataset, results

    def _op(self, other: Any, op: str) -> OpResult:
        if not isinstance(other, IntersectColumn):
            raise TypeError(f"{op} combines two paired columns of an intersect EDA result")
        return self._results.combine(self, other, op)

    def __add__(self, other: Any) -> OpResult:
        return self._op(other, "+")

    def __sub__(self, other: Any) -> OpResult:
        return self._op(other, "-")

    def __mul__(self, other: Any) -> OpResult:
        return self._op(other, "*")

    def __truediv__(self, other: Any) -> OpResult:
        return self._op(other, "/")

    def __repr__(self) -> str:
        return f"IntersectColumn({self.dataset}.{self.name}, {self.kind}, n≈{self.count():.0f})"


class PairView:
    """One pair's release, oriented as asked: ``x`` the first column, ``y`` the second."""

    def __init__(self, data: dict[str, Any], flipped: bool) -> None:
        self.data, self.flipped = data, flipped
        counts = np.asarray(data["counts"], dtype=np.float64)
        self.counts = counts.T if flipped else counts
        x, y = ("y", "x") if flipped else ("x", "y")
        self.x, self.y = data[x], data[y]
        self.count_x = np.asarray(data[f"count_{x}"], dtype=np.float64)
        self.count_y = np.asarray(data[f"count_{y}"], dtype=np.float64)
        self.sum_y_by_x = data[f"sum_{y}_by_{x}"]
        self.sum_x_by_y = data[f"sum_{x}_by_{y}"]
        self.sum_xy = data.get("sum_xy")

    @staticmethod
    def labels(spec: dict[str, Any]) -> list[Any]:
        if spec["kind"] == "numeric":
            e = np.linspace(spec["lo"], spec["hi"], spec["bins"] + 1)
            return [f"[{e[i]:.3g}, {e[i + 1]:.3g})" for i in range(spec["bins"])]
        return [*spec["values"], "other"]

    @staticmethod
    def edges(spec: dict[str, Any]) -> np.ndarray:
        if spec["kind"] == "numeric":
            return np.linspace(spec["lo"], spec["hi"], spec["bins"] + 1)
        return np.arange(len(spec["values"]) + 2) - 0.5


class OpResult(EdaColumn):
    """``a op b`` for two paired numeric columns: a derived histogram and its moments."""

    def __init__(self, name: str, edges: np.ndarray, counts: np.ndarray, dropped: float,
                 moments: tuple[float, float] | None, epsilon: float) -> None:
        super().__init__(name, {"kind": "numeric", "edges": edges.tolist(),
                                "counts": counts.tolist(), "epsilon": epsilon, "flags": []})
        self.dropped = dropped
        self._moments = moments
        if dropped > 0.01:
            self.data["flags"].append(f"{dropped:.0%} of the mass left out (divisor bins "
                                      "around 0)")

    def mean(self) -> float:
        """Exact (up to noise and clipping) for ``+ - *`` from released sums; else histogram."""
        return self._moments[0] if self._moments else super().mean()

    def std(self) -> float:
        if self._moments and not math.isnan(self._moments[1]):
            return self._moments[1]
        return super().std()

    def __repr__(self) -> str:
        return f"OpResult({self.name!r}, mean≈{self.mean():.4g})"


class _GroupBy:
    def __init__(self, results: IntersectResults, by: IntersectColumn) -> None:
        self.results, self.by = results, by

    def __getitem__(self, column: IntersectColumn) -> _Grouped:
        return _Grouped(self.results.pair(self.by, column), self.by, column)


class _Grouped:
    """``groupby(a)[b]``: b's statistics in each of a's groups (a's bins or categories)."""

    def __init__(self, view: PairView, by: IntersectColumn, column: IntersectColumn) -> None:
        self.view, self.by, self.column = view, by, column

    def _series(self, values: np.ndarray) -> pd.Series:
        import pandas as pd

        index = pd.Index(PairView.labels(self.view.x), name=f"{self.by.dataset}.{self.by.name}")
        return pd.Series(values, index=index, name=f"{self.column.dataset}.{self.column.name}")

    def count(self) -> pd.Series:
        """Noisy rows per group (0 where below the runner's small-count threshold)."""
        return self._series(self.view.count_x)

    def sum(self) -> pd.Series:
        """Sum of the column in each group (noisy; clipped values)."""
        return self._series(self._sums() + self.view.count_x * _centre(self.view.y))

    def _sums(self) -> np.ndarray:
        if self.view.sum_y_by_x is None:
            raise ConfigError(f"{self.column.dataset}.{self.column.name} is categorical: "
                              "groupby(...)[...] needs a numeric column to average", "")
        return np.asarray(self.view.sum_y_by_x, dtype=np.float64)

    def mean(self) -> pd.Series:
        """Mean of the column in each group (NaN where the group's noisy count was suppressed)."""
        n = self.view.count_x
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.where(n > 0, _centre(self.view.y) + self._sums() / n, np.nan)
        return self._series(means)


def _centre(spec: dict[str, Any]) -> float:
    return (float(spec["lo"]) + float(spec["hi"])) / 2.0


class IntersectResults(EdaResults):
    """What ``session.results()`` returns for an intersect-mode EDA session."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super().__init__(arrays, meta)
        self.datasets = {name: EdaDataset(name, {c: IntersectColumn(c, d, name, self)
                                                 for c, d in cols.items()})
                         for name, cols in meta["results"]["datasets"].items()}
        self._pairs: dict[tuple[tuple[str, str], tuple[str, str]], dict[str, Any]] = {}
        for p in meta["results"].get("pairs", []):
            key = ((p["x"]["client"], p["x"]["column"]), (p["y"]["client"], p["y"]["column"]))
            self._pairs[key] = p

    @property
    def n(self) -> int:
        """Rows of the intersection (public: the record linkage reported it)."""
        return int(self.meta["results"].get("n", 0))

    def pairs(self) -> list[tuple[str, str]]:
        """The pairs of paired columns, as ``("client.column", "client.column")``."""
        return [(f"{a[0]}.{a[1]}", f"{b[0]}.{b[1]}") for a, b in self._pairs]

    def paired(self) -> list[tuple[IntersectColumn, IntersectColumn]]:
        """The pairs as column objects (to pass to :meth:`corr`, :meth:`plot_hist`, …)."""
        return [(self.datasets[a[0]].columns[a[1]], self.datasets[b[0]].columns[b[1]])
                for a, b in self._pairs if a[1] in self.datasets.get(a[0], EdaDataset("", {})).columns
                and b[1] in self.datasets.get(b[0], EdaDataset("", {})).columns]

    def pair(self, a: IntersectColumn, b: IntersectColumn) -> PairView:
        """The release of the pair ``(a, b)``, oriented so that ``x`` is ``a``."""
        ka, kb = (a.dataset, a.name), (b.dataset, b.name)
        data, flipped = self._pairs.get((ka, kb)), False
        if data is None:
            data, flipped = self._pairs.get((kb, ka)), True
        if data is None:
            raise ConfigError(f"{a.dataset}.{a.name} and {b.dataset}.{b.name} were not paired",
                              "name both in paired_columns when creating the session")
        if data.get("withheld"):
            raise ConfigError(f"the pair {a.dataset}.{a.name}, {b.dataset}.{b.name} was not "
                              f"released: {data['withheld']}", "")
        return PairView(data, flipped)

    # ------------------------------------------------------------------ pair statistics
    def _moments(self, a: IntersectColumn, b: IntersectColumn
                 ) -> tuple[float, float, float, float, float]:
        """(mean a, mean b, var a, var b, cov) from the released sums (centred values)."""
        view = self.pair(a, b)
        if view.sum_xy is None or a.data.get("sum") is None or b.data.get("sum") is None:
            raise ConfigError(f"{a.dataset}.{a.name} and {b.dataset}.{b.name} must both be "
                              "numeric (with released sums)", "")
        # Both columns' noisy counts estimate the one intersection size: their mean keeps
        # corr(a, b) == corr(b, a) and cov symmetric, whatever the noise drew.
        n = max(0.5 * (a.count() + b.count()), 1.0)
        ma, mb = a.data["sum"] / n, b.data["sum"] / n
        va = max(a.data["sum_sq"] / n - ma * ma, 0.0)
        vb = max(b.data["sum_sq"] / n - mb * mb, 0.0)
        cov = float(view.sum_xy) / n - ma * mb
        return ma + a.data["center"], mb + b.data["center"], va, vb, cov

    def corr(self, a: IntersectColumn, b: IntersectColumn) -> float:
        """Pearson correlation of ``a`` and ``b`` on the intersection (noisy; clipped values)."""
        _, _, va, vb, cov = self._moments(a, b)
        if va <= 0 or vb <= 0:
            return math.nan
        return float(np.clip(cov / math.sqrt(va * vb), -1.0, 1.0))

    def cov(self, a: IntersectColumn, b: IntersectColumn) -> float:
        return self._moments(a, b)[4]

    def groupby(self, by: IntersectColumn) -> _GroupBy:
        """``results.groupby(a)[b].mean()``: b's mean in each of a's groups."""
        if not isinstance(by, IntersectColumn):
            raise TypeError("groupby takes a column of this result, e.g. results['a']['x0']")
        return _GroupBy(self, by)

    def combine(self, a: IntersectColumn, b: IntersectColumn, op: str) -> OpResult:
        """``a op b`` (``+ - * /``) from the pair's 2D histogram and released sums."""
        view = self.pair(a, b)
        if view.x["kind"] != "numeric" or view.y["kind"] != "numeric":
            raise ConfigError(f"{a.dataset}.{a.name} {op} {b.dataset}.{b.name}: arithmetic "
                              "needs two numeric columns", "")
        edges, counts, dropped = derive(view.counts, (view.x["lo"], view.x["hi"]),
                                        (view.y["lo"], view.y["hi"]), op, bins=20)
        moments = None
        if op != "/":
            try:
                ma, mb, va, vb, cov = self._moments(a, b)
                if op == "+":
                    moments = (ma + mb, math.sqrt(max(va + vb + 2 * cov, 0.0)))
                elif op == "-":
                    moments = (ma - mb, math.sqrt(max(va + vb - 2 * cov, 0.0)))
                else:
                    moments = (cov + ma * mb, math.nan)
            except ConfigError:
                moments = None
        name = f"{a.dataset}.{a.name} {op} {b.dataset}.{b.name}"
        return OpResult(name, edges, counts, dropped, moments, float(view.data["epsilon"]))

    def plot_hist(self, a: IntersectColumn | None = None, b: IntersectColumn | None = None,
                  ax: Any = None) -> Figure:
        """No arguments: every party's histograms; two paired columns: their 2D histogram."""
        if a is None and b is None:
            return self._parties_hist()
        if a is None or b is None:
            raise TypeError("plot_hist takes two paired columns, or none")
        from matplotlib.figure import Figure

        view = self.pair(a, b)
        fig = ax.figure if ax is not None else Figure(figsize=(5.2, 4.2), layout="constrained")
        ax = ax or fig.subplots()
        mesh = ax.pcolormesh(PairView.edges(view.x), PairView.edges(view.y), view.counts.T,
                             cmap="Blues")
        fig.colorbar(mesh, ax=ax, label="noisy count")
        for spec, axis in ((view.x, ax.xaxis), (view.y, ax.yaxis)):
            if spec["kind"] == "categorical":
                axis.set_ticks(range(len(spec["values"]) + 1), PairView.labels(spec))
        ax.set_xlabel(f"{a.dataset}.{a.name}")
        ax.set_ylabel(f"{b.dataset}.{b.name}")
        ax.set_title(f"2D histogram (ε={view.data['epsilon']:.3g})", fontsize=9)
        return fig

    def _parties_hist(self) -> Figure:
        from matplotlib.figure import Figure

        cols = [c for d in self.datasets.values() for c in d.columns.values()]
        n = max(len(cols), 1)
        width = min(4, n)
        rows = math.ceil(n / width)
        fig = Figure(figsize=(3.6 * width, 2.8 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, width)).ravel()
        for ax, col in zip(axes, cols, strict=False):
            col.plot_hist(ax)
            ax.set_title(f"{col.dataset}.{ax.get_title()}", fontsize=9)
        for ax in axes[len(cols):]:
            ax.set_visible(False)
        return fig

    def summary(self) -> str:
        gaps = super().summary()
        held = [f"{a}×{b}" for (a, b), p in zip(self.pairs(), self._pairs.values(), strict=True)
                if p.get("withheld")]
        if held:
            gaps = "; ".join(filter(None, [gaps, f"pairs not released: {', '.join(held)}"]))
        return gaps

    def __repr__(self) -> str:
        return (f"EDA Session collection of datasets: {list(self.datasets)} (intersection of "
                f"{self.n:,} rows; {len(self._pairs)} pair(s))")
