"""Feature importance of a vertical session, as ``session.feature_importance_scores()`` returns it.

It travels in the session's artefact (``meta["feature_importance"]`` and, where a party's policy
releases them, arrays ``shap/<party>``), so it reaches the kernel through the one artefact channel
like the model; this class only reshapes and draws it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["FeatureImportance"]

WITHHELD = ("per-row SHAP values stay at {party}'s runner: its dataset policy does not set "
            "release_shap_details (only mean |SHAP| per feature leaves by default)")


class FeatureImportance:
    """SHAP values of every party's own features, computed once at the end of training.

    Each party explains the federated model as a function of its own columns (the others' held at
    their actual values), on the same subsample of linked training rows. A feature's importance
    is its mean |SHAP value| over those rows (and over the explained outputs).

    Parameters
    ----------
    section
        The artefact's ``feature_importance`` metadata.
    tensors
        The artefact's arrays (``shap/<party>``: rows x features x outputs, where released).
    """

    def __init__(self, section: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.scores: dict[str, dict[str, float]] = {
            c: {f: float(v) for f, v in s.items()} for c, s in section.get("scores", {}).items()}
        self.outputs: list[str] = list(section.get("outputs") or [])
        self.rows = int(section.get("rows", 0))
        self.details: dict[str, np.ndarray] = {
            c: tensors[f"shap/{c}"] for c in self.scores if f"shap/{c}" in tensors}
        self.withheld: dict[str, str] = {c: WITHHELD.format(party=c) for c in self.scores
                                         if c not in self.details}

    def ranking(self, topk: int | None = None) -> list[tuple[str, str, float]]:
        """``(party, feature, mean |SHAP|)``, most important first."""
        found = [(c, f, v) for c, s in self.scores.items() for f, v in s.items()]
        found.sort(key=lambda t: -t[2])
        return found[:topk] if topk else found

    def as_dict(self) -> dict[str, Any]:
        """``feature_importance_scores``: party → feature → mean |SHAP|;
        ``feature_importance_details``: one entry per explained output, party → a DataFrame of
        per-row SHAP values (rows x the party's features), for the parties that released them;
        ``feature_importance_details_withheld``: party → why its per-row values are not here."""
        import pandas as pd

        details: list[dict[str, pd.DataFrame]] = []
        for k in range(len(self.outputs) if self.details else 0):
            details.append({c: pd.DataFrame(v[:, :, k], columns=list(self.scores[c]))
                            for c, v in self.details.items()})
        return {"feature_importance_scores": {c: dict(s) for c, s in self.scores.items()},
                "feature_importance_details": details,
                "feature_importance_details_withheld": dict(self.withheld),
                "outputs": list(self.outputs), "rows": self.rows}

    def plot(self, topk: int = 15, style: str = "bar", *, title: str | None = None) -> Figure:
        """The ``topk`` most important features as bars coloured by party (``style="bar"``), or
        one box plot per party of its top features' per-row SHAP values (``style="box"``; a
        party whose policy withholds them gets a panel saying so)."""
        from matplotlib.figure import Figure

        if style not in ("bar", "box"):
            raise ValueError("style must be 'bar' or 'box'")
        parties = list(self.scores)
        colors = {c: f"C{i}" for i, c in enumerate(parties)}
        if style == "bar":
            top = self.ranking(topk)[::-1]
            fig = Figure(figsize=(6.0, 0.3 * len(top) + 1.5), layout="constrained")
            ax = fig.subplots()
            ax.barh(range(len(top)), [v for _, _, v in top], color=[colors[c] for c, _, _ in top])
            ax.set_yticks(range(len(top)), [f"{c}: {f}" for c, f, _ in top], fontsize=8)
            ax.set_xlabel("mean |SHAP value|")
            ax.grid(alpha=0.3, axis="x")
            ax.set_title(title or f"feature importance (top {len(top)})")
            return fig
        fig = Figure(figsize=(5.0 * max(1, len(parties)), 4.0), layout="constrained")
        axes = fig.subplots(1, max(1, len(parties)), squeeze=False)[0]
        for ax, c in zip(axes, parties, strict=False):
            ax.set_title(c)
            if c not in self.details:
                ax.text(0.5, 0.5, "per-row values withheld\nby this party's policy",
                        ha="center", va="center", transform=ax.transAxes, fontsize=9)
                ax.set_axis_off()
                continue
            names = list(self.scores[c])
            order = sorted(range(len(names)), key=lambda j: -self.scores[c][names[j]])[:topk]
            cube = self.details[c]
            ax.boxplot([cube[:, j, :].ravel() for j in order])
            ax.set_xticks(range(1, len(order) + 1), [names[j] for j in order], fontsize=8,
                          rotation=45, ha="right")
            ax.axhline(0.0, color="gray", lw=0.8)
            ax.set_ylabel("SHAP value")
        fig.suptitle(title or "per-row SHAP values")
        return fig

    def __repr__(self) -> str:
        top = ", ".join(f"{c}:{f} {v:.3g}" for c, f, v in self.ranking(5))
        return f"FeatureImportance({self.rows} rows; top: {top})"
