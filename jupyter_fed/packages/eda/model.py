"""Kernel half of EDA: a collection → dataset → column view over noisy histograms.

Every statistic is computed from the differentially private histograms the runners released, so
it carries their protection (and their noise): means and quantiles are histogram estimates, and
``min``/``max`` are the private clipping bounds, never a row's exact value.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

STATS = ("count", "mean", "std", "min", "25%", "50%", "75%", "max")


class EdaColumn:
    """One column of one dataset."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name, self.data = name, data
        self.kind: str = data.get("kind", "numeric")
        self.counts = np.asarray(data.get("counts", []), dtype=np.float64)

    # -- basics --------------------------------------------------------------------------------
    def count(self) -> float:
        return float(self.counts.sum())

    def _mids(self) -> np.ndarray:
        if self.kind == "categorical":
            return np.asarray(self.data.get("values", []), dtype=np.float64)
        e = np.asarray(self.data.get("edges", []), dtype=np.float64)
        return (e[:-1] + e[1:]) / 2 if len(e) > 1 else np.array([])

    def mean(self) -> float:
        n = self.count()
        return float((self._mids() * self.counts).sum() / n) if n else math.nan

    def std(self) -> float:
        n = self.count()
        if n < 2:
            return math.nan
        m = self.mean()
        return float(math.sqrt(((self._mids() - m) ** 2 * self.counts).sum() / (n - 1)))

    def quantile(self, q: float) -> float:
        n = self.count()
        if not n:
            return math.nan
        if self.kind == "categorical":
            cum = np.cumsum(self.counts) / n
            return float(self._mids()[np.searchsorted(cum, q)])
        edges = np.asarray(self.data["edges"], dtype=np.float64)
        cum = np.concatenate([[0.0], np.cumsum(self.counts)]) / n
        return float(np.interp(q, cum, edges))  # uniform within a bin

    def median(self) -> float:
        return self.quantile(0.5)

    def min(self) -> float:
        edges = self.data.get("edges") or []
        return float(edges[0]) if self.kind == "numeric" and edges else \
            (float(min(self.data["values"])) if self.data.get("values") else math.nan)

    def max(self) -> float:
        edges = self.data.get("edges") or []
        return float(edges[-1]) if self.kind == "numeric" and edges else \
            (float(max(self.data["values"])) if self.data.get("values") else math.nan)

    # -- categorical ---------------------------------------------------------------------------
    def uniques(self) -> list[Any]:
        """Categories with a (noisy) count at or above the runner's threshold; [] if numeric."""
        return list(self.data.get("values", [])) if self.kind == "categorical" else []

    def unique_count(self) -> float:
        return float(len(self.uniques())) if self.kind == "categorical" else math.nan

    def mode(self) -> Any:
        if self.kind != "categorical" or not len(self.counts):
            return math.nan
        return self.data["values"][int(np.argmax(self.counts))]

    def describe(self) -> pd.Series:
        import pandas as pd

        if self.kind == "categorical":
            return pd.Series({"count": self.count(), "unique": self.unique_count(),
                              "top": self.mode(), "freq": float(self.counts.max(initial=0))},
                             name=self.name)
        values = [self.count(), self.mean(), self.std(), self.min(), self.quantile(0.25),
                  self.median(), self.quantile(0.75), self.max()]
        return pd.Series(dict(zip(STATS, values, strict=True)), name=self.name)

    def plot_hist(self, ax: Any = None) -> Figure:
        from matplotlib.figure import Figure

        fig = ax.figure if ax is not None else Figure(figsize=(4.5, 3.2), layout="constrained")
        ax = ax or fig.subplots()
        if self.kind == "categorical":
            ax.bar([str(v) for v in self.uniques()], self.counts, color="#4c72b0")
        elif len(self.counts):
            edges = np.asarray(self.data["edges"])
            ax.stairs(self.counts, edges, fill=True, color="#4c72b0", alpha=0.85)
        ax.set_title(f"{self.name} (ε={self.data.get('epsilon', float('nan')):.3g})")
        ax.set_ylabel("noisy count")
        return fig

    def __repr__(self) -> str:
        return f"EdaColumn({self.name!r}, {self.kind}, n≈{self.count():.0f})"


class EdaDataset:
    """The columns of one dataset; index by name or 1-based position, or a list of names."""

    def __init__(self, name: str, columns: dict[str, EdaColumn]) -> None:
        self.name, self.columns = name, columns

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, list):
            return EdaDataset(self.name, {self._col(k).name: self._col(k) for k in key})
        return self._col(key)

    def _col(self, key: Any) -> EdaColumn:
        if isinstance(key, int):
            return list(self.columns.values())[key - 1]
        return self.columns[key]

    def _each(self, fn: str) -> pd.Series:
        import pandas as pd

        return pd.Series({c: getattr(col, fn)() for c, col in self.columns.items()}, name=self.name,
                         dtype=object if fn in ("mode", "uniques") else float)

    def mean(self) -> pd.Series:
        return self._each("mean")

    def median(self) -> pd.Series:
        return self._each("median")

    def std(self) -> pd.Series:
        return self._each("std")

    def unique_count(self) -> pd.Series:
        return self._each("unique_count")

    def mode(self) -> pd.Series:
        return self._each("mode")

    def uniques(self) -> pd.Series:
        return self._each("uniques")

    def describe(self) -> pd.DataFrame:
        import pandas as pd

        numeric = {c: col.describe() for c, col in self.columns.items() if col.kind == "numeric"}
        frame = pd.DataFrame(numeric) if numeric else pd.DataFrame(index=list(STATS))
        for c, col in self.columns.items():
            if col.kind == "categorical":
                frame[c] = [col.count(), col.mean(), col.std(), col.min(), col.quantile(0.25),
                            col.median(), col.quantile(0.75), col.max()]
        return frame[list(self.columns)]

    def plot_hist(self) -> Figure:
        from matplotlib.figure import Figure

        n = len(self.columns)
        cols = min(4, n)
        rows = math.ceil(n / cols)
        fig = Figure(figsize=(3.6 * cols, 2.8 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
        for ax, col in zip(axes, self.columns.values(), strict=False):
            col.plot_hist(ax)
        for ax in axes[n:]:
            ax.set_visible(False)
        fig.suptitle(self.name)
        return fig

    def __repr__(self) -> str:
        return f"EdaDataset({self.name!r}, columns={list(self.columns)})"


class EdaResults:
    """What ``session.results()`` returns for an EDA session: datasets by name."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        results = meta["results"]
        self.datasets = {name: EdaDataset(name, {c: EdaColumn(c, d) for c, d in cols.items()})
                         for name, cols in results["datasets"].items()}

    def __getitem__(self, name: str) -> EdaDataset:
        return self.datasets[name]

    def __iter__(self) -> Any:
        return iter(self.datasets)

    def _frame(self, fn: str) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({n: getattr(d, fn)() for n, d in self.datasets.items()}).T

    def mean(self) -> pd.DataFrame:
        """Datasets × columns; NaN where a column is absent or the statistic does not apply."""
        return self._frame("mean")

    def median(self) -> pd.DataFrame:
        return self._frame("median")

    def std(self) -> pd.DataFrame:
        return self._frame("std")

    def unique_count(self) -> pd.DataFrame:
        return self._frame("unique_count")

    def mode(self) -> pd.DataFrame:
        return self._frame("mode")

    def uniques(self) -> pd.DataFrame:
        return self._frame("uniques")

    def describe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.concat({n: d.describe() for n, d in self.datasets.items()}, axis=1)

    def combined(self) -> EdaDataset:
        """A pooled view across datasets: histograms re-binned onto a common grid and summed.

        Datasets' private bounds differ, so counts are spread over the common bins in proportion
        to overlap (uniform within a bin): an approximation, stated as such.
        """
        names = sorted({c for d in self.datasets.values() for c in d.columns})
        pooled = {}
        for c in names:
            cols = [d.columns[c] for d in self.datasets.values() if c in d.columns]
            pooled[c] = _pool(c, cols)
        return EdaDataset("combined", pooled)

    def plot_hist(self) -> Figure:
        return self.combined().plot_hist()

    def _repr_html_(self) -> str:
        return (f"<b>EDA results</b> ({self.meta['results'].get('mechanism')}, "
                f"ε={self.meta['results'].get('epsilon')} per dataset): "
                + self.describe().round(4).to_html())

    def __repr__(self) -> str:
        return f"EDA Session collection of datasets: {list(self.datasets)}"


def _pool(name: str, cols: list[EdaColumn]) -> EdaColumn:
    if all(c.kind == "categorical" for c in cols):
        acc: dict[Any, float] = {}
        for c in cols:
            for v, n in zip(c.data["values"], c.counts, strict=True):
                acc[v] = acc.get(v, 0.0) + n
        values = sorted(acc)
        return EdaColumn(name, {"kind": "categorical", "values": values,
                                "counts": [acc[v] for v in values]})
    numeric = [c for c in cols if c.kind == "numeric" and c.data.get("edges")]
    if not numeric:
        return EdaColumn(name, {"kind": "numeric", "edges": [], "counts": []})
    lo = min(c.data["edges"][0] for c in numeric)
    hi = max(c.data["edges"][-1] for c in numeric)
    bins = max(len(c.counts) for c in numeric)
    edges = np.linspace(lo, hi, bins + 1)
    total = np.zeros(bins)
    for c in numeric:
        e = np.asarray(c.data["edges"])
        for i, n in enumerate(c.counts):
            overlap = np.clip(np.minimum(edges[1:], e[i + 1]) - np.maximum(edges[:-1], e[i]), 0, None)
            if overlap.sum() > 0:
                total += n * overlap / overlap.sum()
    return EdaColumn(name, {"kind": "numeric", "edges": edges.tolist(), "counts": total.tolist(),
                            "epsilon": min(c.data.get("epsilon", math.nan) for c in numeric)})
