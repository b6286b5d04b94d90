"""Showing results from a magic: HTML where the frontend renders it, aligned text everywhere else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from IPython.display import display

from jupyter_fed.client.reprs import table_html, table_text

__all__ = ["figure_png", "in_kernel", "show", "show_figure", "show_table"]


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


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib ``Figure`` as PNG bytes (no pyplot, so no global state)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def show_figure(fig: Any) -> None:
    """Display a figure as a PNG, whatever formatters the kernel has (or lacks)."""
    from IPython.display import Image

    display(Image(data=figure_png(fig), format="png"))
