"""How a finished EDA session shows in a notebook (``%%federate eda``)."""

from __future__ import annotations

from typing import Any

from jupyter_fed.packages._display import Rich


def show(results: Any) -> list[Any]:
    """The describe table (noisy: DP histograms) and the pooled histograms."""
    table = results.describe()
    return [Rich("EDA results (noisy: differentially private histograms)\n"
                 f"{table.round(4).to_string()}", results._repr_html_()),
            results.plot_hist()]
