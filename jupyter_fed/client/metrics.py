"""Session metrics in the reference SDK's shape, with a plot."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class SessionMetrics:
    """Per-model federated metrics and per-client metrics of one session.

    Entry ``i`` of ``federated_metrics`` and ``client_metrics`` describes the global model after
    round ``i`` (entry 0 is the initial model).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def as_dict(self) -> dict[str, Any]:
        """``{session_id, federated_metrics, client_metrics, latest_global_model_federated_loss}``."""
        return dict(self._data)

    @property
    def federated(self) -> list[dict[str, float]]:
        return list(self._data["federated_metrics"])

    def latest(self) -> dict[str, float]:
        fed = self.federated
        return dict(fed[-1]) if fed else {}

    def plot(self, metrics: list[str] | None = None) -> Figure:
        """One panel per metric: the federated value per round and each client's as thin lines."""
        from matplotlib.figure import Figure

        fed = self.federated
        names = metrics or sorted({k for m in fed for k in m if k != "num_examples"},
                                  key=lambda k: (k != "loss", k))
        fig = Figure(figsize=(4.2 * max(1, len(names)), 3.4), layout="constrained")
        axes = fig.subplots(1, max(1, len(names)), squeeze=False)[0]
        clients = sorted({c for per in self._data["client_metrics"] for c in per})
        for ax, name in zip(axes, names, strict=False):
            for cid in clients:
                ys = [per.get(cid, {}).get(f"test_{name}", math.nan)
                      for per in self._data["client_metrics"]]
                ax.plot(range(len(ys)), ys, lw=0.9, alpha=0.6, label=cid)
            ax.plot(range(len(fed)), [m.get(name, math.nan) for m in fed], lw=2.2, color="black",
                    marker="o", ms=3, label="federated")
            ax.set_title(name)
            ax.set_xlabel("round")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"session {self._data['session_id']}")
        return fig

    def __repr__(self) -> str:
        return f"SessionMetrics({self.latest()})"

    def _repr_html_(self) -> str:
        """A table of the federated metrics per round, when a notebook shows the metrics."""
        from jupyter_fed.client._repr import metrics_html

        return metrics_html(self._data)
