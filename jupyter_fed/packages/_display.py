"""What a package hands the notebook to show: text and HTML, without importing IPython.

A package's ``Notebook.show`` function returns a list of things to show: strings (printed),
:class:`Rich` (HTML in a notebook, text elsewhere) and matplotlib figures (a PNG in a notebook).
The magics do the showing; packages stay free of Jupyter imports (house rule 1).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rich"]


@dataclass(frozen=True)
class Rich:
    """A block with a plain-text and an HTML rendering of the same content."""

    text: str
    html: str

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.html
