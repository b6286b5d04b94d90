"""How a finished intersect-mode EDA session shows in a notebook (``%%federate eda --mode
intersect``)."""

from __future__ import annotations

from typing import Any

from jupyter_fed.packages._display import Rich


def show(results: Any) -> list[Any]:
    """What was withheld, the describe table of every party, each pair's correlation, and the
    parties' histograms."""
    table = results.describe()
    summary = results.summary()
    lines = []
    for a, b in results.paired():
        names = f"{a.dataset}.{a.name}, {b.dataset}.{b.name}"
        try:
            lines.append(f"corr({names}) = {results.corr(a, b):.3f}")
        except Exception as exc:  # categorical or withheld: say why, keep showing the rest
            lines.append(f"{names}: {getattr(exc, 'message', exc)}")
    return [*([summary] if summary else []),
            Rich(f"EDA on the intersection ({results.n:,} linked rows; noisy: differentially "
                 f"private releases)\n{table.to_string()}", results._repr_html_()),
            *(["\n".join(lines)] if lines else []),
            results.plot_hist()]
