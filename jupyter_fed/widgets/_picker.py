"""``DatasetPicker``: browse the catalog across runners, filter it, pick training datasets."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import List, Unicode, observe

from jupyter_fed.client.reprs import fmt, table_html

if TYPE_CHECKING:
    from jupyter_fed.client import Client

__all__ = ["DatasetPicker"]

ANY_TAG = ""
_COLUMNS = ["runner", "name", "description", "tags", "num_rows", "num_columns", "columns"]


def _key(row: dict[str, Any]) -> str:
    return f"{row['runner']}/{row['name']}"


def _matches(row: dict[str, Any], text: str, tag: str) -> bool:
    if tag and tag not in row["tags"]:
        return False
    if not text:
        return True
    hay = " ".join([row["runner"], row["name"], row["description"] or "", *row["tags"],
                    *row["columns"]]).lower()
    return all(word in hay for word in text.lower().split())


class DatasetPicker(w.VBox):
    """The catalog as a table (schema, row counts, tags) with a text and tag filter and a picker.

    Datasets are identified as ``"runner/name"`` because one name (say ``test``) often exists on
    several runners. Picks survive filtering: a picked dataset stays listed until it is unpicked.

    Parameters
    ----------
    client
        The SDK client whose catalog to show.
    """

    filter_text = Unicode("", help="Words that a dataset's name, runner, description, tags or "
                                   "column names must all contain (case-insensitive).")
    tag = Unicode(ANY_TAG, help="Only datasets carrying this tag; empty for any tag.")
    selected = List(Unicode(), help="Picked datasets as 'runner/name' keys, in the order picked.")
    visible = List(Unicode(), read_only=True,
                   help="Keys of the datasets that pass the filters, in catalog order.")

    def __init__(self, client: Client, **kwargs: Any) -> None:
        self.client = client
        self.catalog: list[dict[str, Any]] = []
        self._syncing = False
        self.filter_box = w.Text(placeholder="filter: name, runner, tag or column",
                                 layout=w.Layout(width="280px"))
        self.tag_box = w.Dropdown(options=[("any tag", ANY_TAG)], value=ANY_TAG,
                                  layout=w.Layout(width="160px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       tooltip="read the catalog from every runner again")
        self.table = w.HTML()
        self.picker = w.SelectMultiple(options=[], rows=6, description="pick",
                                       layout=w.Layout(width="95%"))
        self.message = w.HTML()
        super().__init__(children=[w.HBox([self.filter_box, self.tag_box, self.refresh_button]),
                                   self.table, self.picker, self.message], **kwargs)
        w.link((self.filter_box, "value"), (self, "filter_text"))
        w.link((self.tag_box, "value"), (self, "tag"))
        self.refresh_button.on_click(lambda _: self.refresh())
        self.picker.observe(self._picked, names="value")
        self.refresh()

    def refresh(self) -> None:
        """Read the catalog again; unreachable runners are reported under the table."""
        import warnings

        from jupyter_fed.errors import FedError

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.catalog = self.client.datasets().to_dict("records")
        except FedError as exc:
            self.catalog = []
            self.message.value = f'<span style="color:#b91c1c">{html.escape(exc.message)}</span>'
        else:
            self.message.value = "<br>".join(html.escape(f"warning: {c.message}") for c in caught)
        tags = sorted({t for row in self.catalog for t in row["tags"]})
        self.tag_box.options = [("any tag", ANY_TAG), *((t, t) for t in tags)]
        if self.tag not in tags:
            self.tag = ANY_TAG
        known = {_key(r) for r in self.catalog}
        self.selected = [k for k in self.selected if k in known]
        self._update()

    def selected_datasets(self) -> list[dict[str, Any]]:
        """Catalog rows of the picked datasets, in picking order."""
        by_key = {_key(r): r for r in self.catalog}
        return [by_key[k] for k in self.selected if k in by_key]

    @observe("filter_text", "tag")
    def _filters_changed(self, _: Any) -> None:
        self._update()

    @observe("selected")
    def _selected_changed(self, change: Any) -> None:
        if self._syncing:
            return
        self._update()

    def _update(self) -> None:
        rows = [r for r in self.catalog if _matches(r, self.filter_text, self.tag)]
        self.set_trait("visible", [_key(r) for r in rows])
        shown = [{**r, "columns": fmt(r["columns"], 60)} for r in rows]
        self.table.value = table_html(shown, _COLUMNS, caption=f"{len(rows)} of {len(self.catalog)} "
                                      "dataset(s)") if rows else "<i>no dataset matches</i>"
        keep = [r for r in self.catalog if _key(r) in self.selected and r not in rows]
        options = [(f"{r['name']} — {r['runner']} · {r['num_rows']:,} rows · "
                    f"{r['num_columns']} columns", _key(r)) for r in [*rows, *keep]]
        self._syncing = True
        try:
            self.picker.options = options
            self.picker.value = tuple(k for k in self.selected if k in {o[1] for o in options})
        finally:
            self._syncing = False

    def _picked(self, change: Any) -> None:
        if self._syncing:
            return
        new = set(change["new"])
        order = [k for k in self.selected if k in new]
        order += [k for k in change["new"] if k not in order]
        self._syncing = True
        try:
            self.selected = order
        finally:
            self._syncing = False
