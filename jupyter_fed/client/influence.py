"""Dataset influence scores of a vertical session, as ``session.influence_scores()`` returns them.

They travel with the session's metrics (``client_metrics[i][party]["influence_score"]``: party
``party``'s Shapley value for model ``i``, in units of validation loss), so they reach the kernel
through ``session.metrics()`` like any other metric; this class only reshapes and draws them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["InfluenceScores"]

KEY = "influence_score"


class InfluenceScores:
    """Each party's multi-round Shapley value for the fall in validation loss.

    Party ``p``'s score for a model is the average, over orderings of the parties, of how much the
    validation loss falls when ``p``'s contribution (its embedding, its partial linear predictor)
    replaces its neutral baseline. The scores of one model add up to the model's whole gain over
    the all-baseline model; a party's *share* is its score over that sum (it is negative for a
    party whose columns make the validation loss worse). The overall score of a party is the mean
    of its scores over the trained models (rounds 1 and later).

    Parameters
    ----------
    metrics
        ``session.metrics().as_dict()``.
    all_metrics
        Whether :meth:`as_dict` gives every round's scores (``True``) or only the overall ones.
    """

    def __init__(self, metrics: dict[str, Any], all_metrics: bool = False) -> None:
        per = metrics.get("client_metrics")
        per = per if isinstance(per, list) else []
        self.session_id: str = str(metrics.get("session_id", ""))
        self.all_metrics = all_metrics
        self.rounds: list[int] = [i for i, m in enumerate(per)
                                  if any(KEY in (v or {}) for v in m.values())]
        self.parties: list[str] = sorted({c for i in self.rounds for c, v in per[i].items()
                                          if KEY in (v or {})})
        self.per_round: dict[str, list[float]] = {
            c: [float((per[i].get(c) or {}).get(KEY, math.nan)) for i in self.rounds]
            for c in self.parties}

    def __bool__(self) -> bool:
        return bool(self.rounds)

    @property
    def scores(self) -> dict[str, float]:
        """Each party's overall score: its mean over the trained models (model 0 is the untrained
        one, counted only when it is all there is)."""
        use = [j for j, r in enumerate(self.rounds) if r > 0] or list(range(len(self.rounds)))
        out = {}
        for c, values in self.per_round.items():
            found = [values[j] for j in use if math.isfinite(values[j])]
            out[c] = sum(found) / len(found) if found else math.nan
        return out

    @property
    def shares(self) -> dict[str, float]:
        """Each party's share of the overall influence (the shares add up to 1)."""
        scores = self.scores
        total = sum(v for v in scores.values() if math.isfinite(v))
        return {c: (v / total if total and math.isfinite(v) else math.nan)
                for c, v in scores.items()}

    def as_dict(self) -> dict[str, Any]:
        """``{session_id, influence_scores, influence_shares}``: overall scores and shares per
        party; with ``all_metrics`` also ``rounds`` (model numbers) and ``influence_scores``
        becomes party → one score per model."""
        out: dict[str, Any] = {"session_id": self.session_id,
                               "influence_shares": self.shares}
        if self.all_metrics:
            out["rounds"] = list(self.rounds)
            out["influence_scores"] = {c: list(v) for c, v in self.per_round.items()}
        else:
            out["influence_scores"] = self.scores
        return out

    def plot(self, per_round: bool = False, *, title: str | None = None) -> Figure:
        """A bar per party of its share of the overall influence, or (``per_round``) one line per
        party of its score at every model."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator, PercentFormatter

        fig = Figure(figsize=(5.5, 3.6), layout="constrained")
        ax = fig.subplots()
        if per_round:
            for c in self.parties:
                ax.plot(self.rounds, self.per_round[c], marker="o", ms=3, label=c)
            ax.axhline(0.0, color="gray", lw=0.8)
            ax.set_xlabel("round (model)")
            ax.set_ylabel("Shapley value (validation loss)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=8)
        else:
            shares = self.shares
            ax.bar(range(len(shares)), list(shares.values()), color="tab:blue")
            ax.set_xticks(range(len(shares)), list(shares), fontsize=8)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.axhline(0.0, color="gray", lw=0.8)
            ax.set_ylabel("share of overall influence")
        ax.grid(alpha=0.3, axis="y")
        ax.set_title(title or f"dataset influence, session {self.session_id}")
        return fig

    def __repr__(self) -> str:
        parts = ", ".join(f"{c} {s:.1%}" for c, s in self.shares.items())
        return f"InfluenceScores({parts or 'none'})"
