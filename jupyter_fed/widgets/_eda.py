"""``EdaPanel``: an EDA session's noisy histograms and summary, one dataset and column at a time."""

from __future__ import annotations

import html
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import List, TraitError, Unicode, observe, validate

from jupyter_fed.client.reprs import fmt

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from jupyter_fed.packages.eda.model import EdaDataset, EdaResults

__all__ = ["COMBINED", "EdaPanel"]

COMBINED = "combined"
"""The ``dataset`` choice that pools every dataset's histograms (``EdaResults.combined()``)."""

_CELL = "padding:2px 8px;text-align:right;border-bottom:1px solid var(--jp-border-color2,#e5e7eb)"
_MARK = "background:var(--jp-brand-color3,#dbeafe);font-weight:600"


class EdaPanel(w.VBox):
    """Explore EDA results: pick a dataset (or all pooled) and a column, see its histogram.

    The histogram of the chosen column is drawn as a PNG; beside it, the chosen dataset's describe
    table with the column highlighted. Every number comes from the differentially private
    histograms the runners released, so it carries their noise.

    Parameters
    ----------
    source
        ``session.results()`` of an EDA session, or the ``Session`` itself (its results are read
        once, here).
    dataset
        The dataset shown first (default: the first one).
    column
        The column shown first (default: the dataset's first column).

    Examples
    --------
    ::

        panel = EdaPanel(session)
        panel.dataset = "combined"
        panel.column = "x3"
    """

    dataset = Unicode("", help="The dataset shown: one of `datasets` ('combined' pools them all).")
    column = Unicode("", help="The column whose histogram is shown: one of `columns`.")
    datasets = List(Unicode(), read_only=True,
                    help="Choices for `dataset`: each dataset of the results, then 'combined'.")
    columns = List(Unicode(), read_only=True, help="Columns of the shown dataset: choices for "
                                                   "`column`.")

    def __init__(self, source: Any, *, dataset: str | None = None, column: str | None = None,
                 **kwargs: Any) -> None:
        self.results = _results(source)
        self._views: dict[str, EdaDataset] = dict(self.results.datasets)
        self._views[COMBINED] = self.results.combined()
        self._pngs: dict[tuple[str, str], bytes] = {}
        self._syncing = False
        self.dataset_box = w.Dropdown(description="dataset", options=list(self._views))
        self.column_box = w.Dropdown(description="column", options=[])
        self.image = w.Image(format="png", layout=w.Layout(max_width="460px"))
        self.table = w.HTML(layout=w.Layout(overflow_x="auto", max_width="100%"))
        self.note = w.HTML(value=_note(self.results))
        super().__init__(children=[w.HBox([self.dataset_box, self.column_box]), self.note,
                                   self.image, self.table], **kwargs)
        self.set_trait("datasets", list(self._views))
        self.dataset_box.observe(lambda ch: self._from_box("dataset", ch["new"]), names="value")
        self.column_box.observe(lambda ch: self._from_box("column", ch["new"]), names="value")
        self.dataset = dataset or self.datasets[0]
        if column:
            self.column = column

    # state ----------------------------------------------------------------------------------
    @validate("dataset")
    def _valid_dataset(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in self._views:
            raise TraitError(f"no dataset {value!r} in these results; choose from "
                             f"{', '.join(self._views)}")
        return value

    @validate("column")
    def _valid_column(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in self.columns and (value or self.columns):
            raise TraitError(f"dataset {self.dataset!r} has no column {value!r}; choose from "
                             f"{', '.join(self.columns)}")
        return value

    @observe("dataset")
    def _dataset_changed(self, change: dict[str, Any]) -> None:
        columns = list(self._views[change["new"]].columns)
        self.set_trait("columns", columns)
        with self._quiet():
            self.dataset_box.value = change["new"]
            self.column_box.options = columns
        keep = self.column if self.column in columns else (columns[0] if columns else "")
        if keep == self.column:
            self._draw()
        self.column = keep  # draws through _column_changed when it changes

    @observe("column")
    def _column_changed(self, change: dict[str, Any]) -> None:
        self._draw()

    def _from_box(self, name: str, value: Any) -> None:
        if not self._syncing and value is not None and value != getattr(self, name):
            setattr(self, name, value)

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """Update the dropdowns from the traits without their observers writing back."""
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

    # drawing --------------------------------------------------------------------------------
    def figure(self) -> Figure:
        """The histogram of the chosen dataset and column, as a matplotlib figure."""
        return self._views[self.dataset][self.column].plot_hist()

    def describe(self) -> pd.DataFrame:
        """The chosen dataset's describe table (noisy: from the histograms)."""
        return self._views[self.dataset].describe()

    def _draw(self) -> None:
        with self._quiet():
            self.column_box.value = self.column or None
        if not self.column:
            self.image.value, self.table.value = b"", "<i>no columns in this dataset</i>"
            return
        key = (self.dataset, self.column)
        if key not in self._pngs:
            self._pngs[key] = _png(self.figure())
        self.image.value = self._pngs[key]
        self.table.value = describe_html(self.describe(), self.column)


def describe_html(frame: pd.DataFrame, selected: str) -> str:
    """A describe table as HTML, the ``selected`` column highlighted (``jp-Fed-eda-selected``)."""
    def cell(tag: str, text: str, column: Any) -> str:
        mark = column == selected
        cls = ' class="jp-Fed-eda-selected"' if mark else ""
        return f'<{tag}{cls} style="{_CELL}{";" + _MARK if mark else ""}">{html.escape(text)}</{tag}>'

    head = "".join(cell("th", str(c), c) for c in frame.columns)
    body = "".join(
        f'<tr><th style="{_CELL}">{html.escape(str(stat))}</th>'
        + "".join(cell("td", fmt(v), c) for c, v in zip(frame.columns, row, strict=True)) + "</tr>"
        for stat, row in zip(frame.index, frame.itertuples(index=False), strict=True))
    return (f'<table class="jp-Fed-eda-table" style="border-collapse:collapse">'
            f'<thead><tr><th style="{_CELL}"></th>{head}</tr></thead><tbody>{body}</tbody></table>')


def _results(source: Any) -> EdaResults:
    from jupyter_fed.packages.eda.model import EdaResults

    results = source
    if not isinstance(source, EdaResults) and callable(getattr(source, "results", None)):
        results = source.results()
    if not isinstance(results, EdaResults):
        raise TypeError(f"EdaPanel shows the results of an EDA session; got "
                        f"{type(results).__name__} (pass session.results() or the Session)")
    if not results.datasets:
        raise ValueError("these EDA results hold no dataset")
    return results


def _note(results: EdaResults) -> str:
    meta = results.meta.get("results", {})
    return (f"<small>differentially private: {html.escape(str(meta.get('mechanism', '')))} noise, "
            f"ε={fmt(meta.get('epsilon'))} per dataset; statistics are estimated from the noisy "
            "histograms, and 'combined' re-bins them onto one grid</small>")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()
