"""IPython magics: ``%fed`` to look around, ``%%federate`` to train or analyse from one cell.

Load them with ``%load_ext jupyter_fed``. Loading imports IPython's magic machinery and nothing
heavy: torch, scikit-learn and matplotlib load only when a session's model or plot is asked for.
"""

from __future__ import annotations

from typing import Any

from jupyter_fed.magics._analytics import AnalyticsSpec
from jupyter_fed.magics._display import figure_png
from jupyter_fed.magics._errors import CellConfigError, FedUsageError, SessionEndedError
from jupyter_fed.magics._fed import FedMagics
from jupyter_fed.magics._federate import FederateMagics
from jupyter_fed.magics._spec import SessionSpec, common_columns

__all__ = ["AnalyticsSpec", "CellConfigError", "FedMagics", "FedUsageError", "FederateMagics",
           "SessionEndedError", "SessionSpec", "common_columns", "load_ipython_extension",
           "unload_ipython_extension"]

_FIGURE = "matplotlib.figure.Figure"


def _figure_png(fig: Any) -> bytes:
    return figure_png(fig)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%fed`` and ``%%federate``; let ``metrics().plot()`` figures show as PNG.

    ``SessionMetrics.plot()`` returns a bare matplotlib ``Figure`` (no pyplot, so no global state).
    Without pyplot's inline backend a kernel would print ``<Figure ...>``; registering a PNG
    formatter *by name* fixes that without importing matplotlib, and yields to any formatter
    already there (``%matplotlib inline`` installs its own).
    """
    ipython.register_magics(FedMagics, FederateMagics)
    png = ipython.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(_FIGURE)
    except KeyError:
        png.for_type_by_name(*_FIGURE.rsplit(".", 1), _figure_png)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and the figure formatter added by :func:`load_ipython_extension`."""
    magics = ipython.magics_manager.magics
    magics["line"].pop("fed", None)
    magics["cell"].pop("federate", None)
    png = ipython.display_formatter.formatters["image/png"]
    try:
        if png.lookup_by_type(_FIGURE) is _figure_png:
            png.pop(_FIGURE)
    except KeyError:
        pass
