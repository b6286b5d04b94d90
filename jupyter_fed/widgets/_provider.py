"""``ProviderForm``: the data provider's entries of the evaluation template, as a small form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
from traitlets import Dict, observe

__all__ = ["ProviderForm"]

_LIST_FIELDS = ("PROVIDER_ID_COLUMNS", "PROVIDER_COLUMNS")


def _as_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class ProviderForm(w.VBox):
    """One text box per parameter of the template (runner, datasets, id columns, columns).

    The form starts from the values given, so a notebook that never touches it runs with them;
    editing a box updates :attr:`values` and calls every :meth:`on_change` callback (the template
    passes ``globals().update``, so the later cells read the edited variables). List parameters
    are typed comma-separated.

    Parameters
    ----------
    **values
        Parameter name → default: a string, or a list of strings for ``PROVIDER_ID_COLUMNS`` and
        ``PROVIDER_COLUMNS``.
    """

    values = Dict(help="Parameter name → its current value (lists for the column parameters).")

    def __init__(self, **values: str | list[str]) -> None:
        self._callbacks: list[Callable[[dict[str, Any]], None]] = []
        self.boxes: dict[str, w.Text] = {}
        for name, value in values.items():
            text = ", ".join(value) if isinstance(value, list) else str(value)
            box = w.Text(value=text, description=name, style={"description_width": "190px"},
                         layout=w.Layout(width="520px"))
            box.observe(self._edited, names="value")
            self.boxes[name] = box
        note = w.HTML("<i>Edit a box, then run the cells below it again.</i>")
        super().__init__([*self.boxes.values(), note])
        self.values = {name: self._read(name) for name in self.boxes}

    def _read(self, name: str) -> str | list[str]:
        text = self.boxes[name].value
        return _as_list(text) if name in _LIST_FIELDS else text.strip()

    def _edited(self, change: dict[str, Any]) -> None:
        self.values = {name: self._read(name) for name in self.boxes}

    def on_change(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(values)`` after every edit."""
        self._callbacks.append(callback)

    @observe("values")
    def _notify(self, change: dict[str, Any]) -> None:
        for callback in self._callbacks:
            callback(dict(change["new"]))
