"""How a finished statistics session shows in a notebook (``%%federate stats``)."""

from __future__ import annotations

from typing import Any

from jupyter_fed.packages._display import Rich


def show(results: Any) -> list[Any]:
    """The merged describe table, the correlation matrix and why any peer was left out."""
    lines = [repr(results)]
    html = [results._repr_html_()]
    if results.columns:
        lines += [results.describe().to_string(float_format=lambda v: f"{v:.4g}"), "correlation:",
                  results.correlation_matrix().round(3).to_string()]
    if len(results.columns) > 1:
        corr = results.correlation_matrix().iloc[:20, :20]
        html.append("<div><b>Correlation</b></div>" + corr.to_html(
            float_format=lambda v: f"{v:.3f}", classes="jp-Fed-stats", na_rep=""))
    lines += [f"{cid}: {why}" for cid, why in results.rejected.items()]
    return [Rich("\n".join(lines), "".join(html))]
