"""Showing results from a magic: HTML where the frontend renders it, aligned text everywhere else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from IPython.display import display

from jupyter_fed.client._repr import table_html, table_text

__all__ = ["in_kernel", "show", "show_table"]


def in_kernel() -> bool:
    """True inside a Jupyter kernel (widgets can render); False in terminal IPython or scripts."""
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def show(text: str, html: str | None = None) -> None:
    """Display one result with a text and, when given, an HTML representation.

    Both go out in one bundle, so a notebook shows the HTML and a terminal the text.
    """
    bundle = {"text/plain": text}
    if html is not None:
        bundle["text/html"] = html
    display(bundle, raw=True)


def show_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, caption: str,
               empty: str) -> None:
    """A table with a caption, or the ``empty`` sentence when there are no rows."""
    if not rows:
        show(empty)
        return
    show(f"{caption}\n{table_text(rows, columns)}", table_html(rows, columns, caption=caption))
