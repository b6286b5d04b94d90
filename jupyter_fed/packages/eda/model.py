"""Kernel half of EDA: a collection → dataset → column view over noisy histograms.

Every statistic is computed from the differentially private histograms the runners released, so
it carries their protection (and their noise): means and quantiles are histogram estimates, and
``min``/``max`` are the private clipping bounds, never a row's exact value.
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

STATS = ("count", "mean", "std", "min", "25%", "50%", "75%", "max", "clipped", "note")


class EdaColumn:
    """One column of one dataset, as its runner released it (or why it did not)."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name, self.data = name, data
        self.kind: str = data.get("kind", "numeric")
        self.counts = np.asarray(data.get("counts", []), dtype=np.float64)

    @property
    def withheld(self) -> str:
        """Why the runner released nothing for this column ('' when it did)."""
        return str(self.data.get("withheld") or "")

    @property
    def flags(self) -> list[str]:
        """Caveats of a released column (e.g. many rows clipped to its bounds)."""
        return list(self.data.get("flags") or [])

    @property
    def clipped_fraction(self) -> float:
        """Noisy fraction of rows outside the column's bounds (NaN for categorical columns)."""
        value = self.data.get("clipped_fraction")
        return float(value) if value is not None else math.nan

    # -- basics --------------------------------------------------------------------------------
    def count(self) -> float:
        """Rows (noisy): the histogram's, including the rows clipped to the bounds."""
        if self.data.get("n") is not None:
            return float(self.data["n"])
        return float(self.counts.sum())

    def _mids(self) -> np.ndarray:
        if self.kind == "categorical":
            return np.asarray(self.data.get("values", []), dtype=np.float64)
        e = np.asarray(self.data.get("edges", []), dtype=np.float64)
        return (e[:-1] + e[1:]) / 2 if len(e) > 1 else np.array([])

    def mean(self) -> float:
        """From the noisy clipped sum when released (accurate), else from the histogram."""
        n = self.count()
        if not n or n <= 0:
            return math.nan
        if self.data.get("sum") is not None:
            return float(self.data["center"] + self.data["sum"] / n)
        total = self.counts.sum()
        return float((self._mids() * self.counts).sum() / total) if total else math.nan

    def std(self) -> float:
        n = self.count()
        if n < 2:
            return math.nan
        if self.data.get("sum_sq") is not None:
            mean_u = self.data["sum"] / n
            var = (self.data["sum_sq"] - n * mean_u * mean_u) / (n - 1)
            return float(math.sqrt(max(var, 0.0)))
        total = self.counts.sum()
        if total < 2:
            return math.nan
        m = float((self._mids() * self.counts).sum() / total)
        return float(math.sqrt(((self._mids() - m) ** 2 * self.counts).sum() / (total - 1)))

    def quantile(self, q: float) -> float:
        n = self.counts.sum()
        if not n:
            return math.nan
        if self.kind == "categorical":
            cum = np.cumsum(self.counts) / n
            return float(self._mids()[min(np.searchsorted(cum, q), len(cum) - 1)])
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
                              "top": self.mode(), "freq": float(self.counts.max(initial=0)),
                              "note": self.note()}, name=self.name)
        values = [self.count(), self.mean(), self.std(), self.min(), self.quantile(0.25),
                  self.median(), self.quantile(0.75), self.max(), self.clipped_fraction,
                  self.note()]
        return pd.Series(dict(zip(STATS, values, strict=True)), name=self.name, dtype=object)

    def note(self) -> str:
        """Why the column is empty, or its caveats; '' when there is nothing to say."""
        if self.withheld:
            return f"not released: {self.withheld}"
        return "; ".join(self.flags)

    def plot_hist(self, ax: Any = None) -> Figure:
        from matplotlib.figure import Figure

        fig = ax.figure if ax is not None else Figure(figsize=(4.5, 3.2), layout="constrained")
        ax = ax or fig.subplots()
        if self.kind == "categorical":
            ax.bar([str(v) for v in self.uniques()], self.counts, color="#4c72b0")
        elif len(self.counts):
            edges = np.asarray(self.data["edges"])
            ax.stairs(self.counts, edges, fill=True, color="#4c72b0", alpha=0.85)
        eps = self.data.get("epsilon")
        title = f"{self.name} (ε={eps:.3g})" if eps is not None else self.name
        if self.withheld:
            title = f"{self.name}: not released"
            ax.text(0.5, 0.5, textwrap.fill(self.withheld, 40), ha="center", va="center",
                    transform=ax.transAxes, fontsize=7, wrap=True)
        elif self.flags:
            title += f" ⚠ {self.clipped_fraction:.0%} clipped" \
                if self.clipped_fraction > 0.1 else " ⚠"
        ax.set_title(title, fontsize=9)
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
                frame[c] = pd.Series([col.count(), col.mean(), col.std(), col.min(),
                                      col.quantile(0.25), col.median(), col.quantile(0.75),
                                      col.max(), math.nan, col.note()], index=list(STATS),
                                     dtype=object)
        return frame[list(self.columns)]

    def withheld(self) -> dict[str, str]:
        """Columns the runner did not release, and why."""
        return {c: col.withheld for c, col in self.columns.items() if col.withheld}

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

    def withheld(self) -> dict[str, dict[str, str]]:
        """Per dataset: the columns its runner did not release, and why."""
        return {n: d.withheld() for n, d in self.datasets.items() if d.withheld()}

    def summary(self) -> str:
        """One line saying what was withheld (empty when every column was released)."""
        gaps = self.withheld()
        if not gaps:
            return ""
        total = sum(len(d.columns) for d in self.datasets.values())
        count = sum(len(v) for v in gaps.values())
        reasons: dict[str, list[str]] = {}
        for name, cols in gaps.items():
            for col, why in cols.items():
                reasons.setdefault(why.split(":")[0].split(" (")[0], []).append(f"{name}.{col}")
        parts = [f"{', '.join(cols[:4])}{' …' if len(cols) > 4 else ''} ({why})"
                 for why, cols in reasons.items()]
        return f"withheld {count} of {total} column(s): " + "; ".join(parts)

    def _repr_html_(self) -> str:
        import html

        note = self.summary()
        return (f"<b>EDA results</b> ({self.meta['results'].get('mechanism')}, "
                f"ε={self.meta['results'].get('epsilon')} per dataset): "
                + (f"<div>⚠ {html.escape(note)}</div>" if note else "")
                + self.describe().to_html(float_format=lambda v: f"{v:.4g}"))

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
        reasons = "; ".join(dict.fromkeys(c.withheld for c in cols if c.withheld))
        return EdaColumn(name, {"kind": "numeric", "edges": [], "counts": [],
                                "withheld": reasons or "no dataset released this column"})
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
    data: dict[str, Any] = {"kind": "numeric", "edges": edges.tolist(), "counts": total.tolist(),
                            "epsilon": min(c.data.get("epsilon", math.nan) for c in numeric),
                            "flags": [f for c in numeric for f in c.flags]}
    if all(c.data.get("sum") is not None for c in numeric):  # pooled sums about zero
        n = sum(float(c.data["n"]) for c in numeric)
        s1 = sum(c.data["sum"] + c.data["n"] * c.data["center"] for c in numeric)
        s2 = sum(c.data["sum_sq"] + 2 * c.data["center"] * c.data["sum"]
                 + c.data["n"] * c.data["center"] ** 2 for c in numeric)
        clipped = sum(c.data["below"] + c.data["above"] for c in numeric)
        data.update(n=n, center=0.0, sum=s1, sum_sq=s2,
                    clipped_fraction=clipped / n if n > 0 else 0.0)
    return EdaColumn(name, data)
