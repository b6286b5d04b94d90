"""How a finished EDA session shows in a notebook (``%%federate eda``)."""

from __future__ import annotations

from typing import Any

from jupyter_fed.packages._display import Rich


def show(results: Any) -> list[Any]:
    """One line saying what was withheld (when anything was), the describe table (noisy: DP
    releases) and the pooled histograms."""
    table = results.describe()
    summary = results.summary()
    return [*([summary] if summary else []),
            Rich("EDA results (noisy: differentially private releases)\n"
                 f"{table.to_string()}", results._repr_html_()),
            results.plot_hist()]
