"""Session metrics in the reference SDK's shape, with a plot."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.figure import Figure


class SessionMetrics:
    """Per-model federated metrics and per-client metrics of one session.

    Entry ``i`` of ``federated_metrics`` and ``client_metrics`` describes the global model after
    round ``i`` (entry 0 is the initial model). Sessions that train no model (record linkage)
    describe the session as a whole: ``client_metrics`` is then ``{client: {...}}`` (for
    ``prl``: ``{client: {train|test: {n_records, n_overlapped_records, frac_overlapped}}}``) and
    ``federated_metrics`` is ``[]``, as in the reference SDK.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @property
    def per_session(self) -> bool:
        """True when the metrics describe the session, not a model per round."""
        return isinstance(self._data.get("client_metrics"), dict)

    def as_dict(self) -> dict[str, Any]:
        """``{session_id, federated_metrics, client_metrics, latest_global_model_federated_loss}``
        (per-session metrics: ``{session_id, federated_metrics, client_metrics}``)."""
        return dict(self._data)

    @property
    def federated(self) -> list[dict[str, float]]:
        return list(self._data["federated_metrics"])

    def latest(self) -> dict[str, float]:
        fed = self.federated
        return dict(fed[-1]) if fed else {}

    def plot(self, metrics: list[str] | None = None, *,
             baseline: dict[str, list[float]] | None = None, baseline_label: str = "centralized",
             title: str | None = None) -> Figure:
        """One panel per metric: the federated value per round and each client's as thin lines.

        Parameters
        ----------
        metrics
            Metric names to draw (default: every federated metric, loss first).
        baseline
            Metric name → one value per round (entry 0 the initial model), drawn dashed on the
            matching panel: e.g. the same network trained centrally on the pooled rows.
        baseline_label
            Legend entry of the baseline.
        title
            Figure title (default: the session id).

        Client curves identical to the federated one (clients that all score one shared test set)
        are drawn once, as the federated curve, and a note says so, rather than filling the legend
        with lines no one can see.
        """
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        if self.per_session:
            return self._plot_session(metrics, title)
        fed = self.federated
        names = metrics or sorted({k for m in fed for k in m if k != "num_examples"},
                                  key=lambda k: (k != "loss", k))
        fig = Figure(figsize=(4.2 * max(1, len(names)), 3.6), layout="constrained")
        axes = fig.subplots(1, max(1, len(names)), squeeze=False)[0]
        # clients that score the model (a vertical session's passive parties report only their
        # influence score, which has a view of its own: session.influence_scores())
        clients = sorted({c for per in self._data["client_metrics"] for c, m in per.items()
                          if any(str(k).startswith("test_") for k in (m or {}))})
        shared = self._clients_match_federated(names, clients)
        for ax, name in zip(axes, names, strict=False):
            if not shared:
                for cid in clients:
                    ys = [per.get(cid, {}).get(f"test_{name}", math.nan)
                          for per in self._data["client_metrics"]]
                    ax.plot(range(len(ys)), ys, lw=0.9, alpha=0.6, label=cid)
            ax.plot(range(len(fed)), [m.get(name, math.nan) for m in fed], lw=2.2, color="black",
                    marker="o", ms=3, label="federated")
            if baseline and baseline.get(name):
                ys = baseline[name]
                ax.plot(range(len(ys)), ys, lw=1.8, ls="--", color="tab:orange",
                        label=baseline_label)
            ax.set_title(name)
            ax.set_xlabel("round")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(title or f"session {self._data['session_id']}")
        if shared and len(clients) > 1:
            # supxlabel, not text: constrained layout makes room for it below the axes' labels
            fig.supxlabel(f"the {len(clients)} clients score one shared test set: their curves "
                          "equal the federated one", fontsize=7, color="dimgray")
        return fig

    def _plot_session(self, metrics: list[str] | None, title: str | None) -> Figure:
        """Per-session metrics: one bar per client and dataset role, one panel per metric."""
        from matplotlib.figure import Figure

        per = self._data["client_metrics"]
        bars = [(f"{cid}\n{role}", values) for cid, roles in per.items()
                for role, values in (roles or {}).items() if isinstance(values, dict)]
        names = metrics or sorted({k for _, v in bars for k, x in v.items()
                                   if isinstance(x, (int, float))}, key=lambda k: (k[:5] != "frac_", k))
        fig = Figure(figsize=(4.2 * max(1, len(names)), 3.6), layout="constrained")
        for ax, name in zip(fig.subplots(1, max(1, len(names)), squeeze=False)[0], names,
                            strict=False):
            ax.bar(range(len(bars)), [v.get(name, math.nan) for _, v in bars], color="tab:blue")
            ax.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=7)
            ax.set_title(name)
            ax.grid(alpha=0.3, axis="y")
        fig.suptitle(title or f"session {self._data['session_id']}")
        return fig

    def _clients_match_federated(self, names: list[str], clients: list[str]) -> bool:
        """Whether every client's curve is the federated one (up to rounding)."""
        if not clients:
            return True
        for fed, per in zip(self.federated, self._data["client_metrics"], strict=False):
            for name in names:
                f = fed.get(name)
                for cid in clients:
                    v = per.get(cid, {}).get(f"test_{name}")
                    if v is None or f is None:
                        if v is not f:
                            return False
                    elif not (math.isclose(v, f, rel_tol=1e-9, abs_tol=1e-12)
                              or (math.isnan(v) and math.isnan(f))):
                        return False
        return True

    def __repr__(self) -> str:
        return f"SessionMetrics({self.latest()})"

    def _repr_html_(self) -> str:
        """A table of the federated metrics per round, when a notebook shows the metrics."""
        from jupyter_fed.client.reprs import metrics_html

        return metrics_html(self._data)


class MetricsAccessor:
    """``session.metrics``: call it for a :class:`SessionMetrics`, or use one's attributes on it
    directly (``session.metrics.as_dict()``, as the reference SDK's metrics page writes it).
    Each use fetches the session's current metrics."""

    def __init__(self, fetch: Callable[[], SessionMetrics]) -> None:
        self._fetch = fetch

    def __call__(self) -> SessionMetrics:
        return self._fetch()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._fetch(), name)

    def __repr__(self) -> str:
        return "<session metrics: call for SessionMetrics>"
