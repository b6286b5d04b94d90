"""What every vertical package's runner steps start from: which party this runner is, and its
linked rows with the columns ``data_config`` gives it checked.

The coordinator names the client in each step's params; the step reads only the rows the linkage
(``prl_session_id``) aligned, through ``DatasetHandle.aligned``, so every party's row ``i`` is
the same person.

Measuring the model on a party's rows (metrics, influence scores, SHAP summaries) is a query:
the coordinator relays the other parties' contributions and can replace them row by row, so
every answer is the loss of a model it crafted. A step that measures declares it in its
package's ``privacy_cost`` (``evaluation=True`` on that role) and releases exact figures only
when the runner granted the round's one exact evaluation (:meth:`VerticalParty.evaluation`);
beyond it, noisy loss and accuracy (:meth:`VerticalParty.noisy_metrics`) or nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import DatasetHandle, StepContext

__all__ = ["VerticalParty"]


class VerticalParty:
    """One party's view of a vertical step: its configs, its aligned rows, its columns."""

    def __init__(self, ctx: StepContext, datasets: dict[str, DatasetHandle],
                 params: dict[str, Any], cfg: Any, data: Any) -> None:
        self.ctx, self.cfg, self.data = ctx, cfg, data
        self.client = str(params.get("client") or "")
        if self.client not in self.data.clients:
            raise ConfigError(f"the step names client {self.client!r}, which data_config does "
                              "not", "the coordinator names it")
        self.mine = self.data.clients[self.client]
        self.is_label = self.mine.label_client
        self.handles = {role: h.aligned(self.cfg.prl_session_id) for role, h in datasets.items()}
        wanted = [*self.mine.predictors, *([self.mine.target] if self.is_label else [])]
        for handle in self.handles.values():
            names = {c.name for c in handle.info.columns}
            missing = [c for c in wanted if c not in names]
            if missing:
                raise ConfigError(f"dataset {handle.info.name!r} has no column(s) "
                                  f"{', '.join(map(str, missing))}",
                                  f"check data_config.{self.client} against the catalog")

    def evaluation(self, role: str) -> str | None:
        """What the runner granted this step on ``role``'s rows: ``"exact"`` (the round's one
        exact evaluation), ``"noisy"`` (one more, charged: answer with noise) or ``None`` (the
        step declared no evaluation there, or runs outside a runner: measure nothing)."""
        grant = (self.ctx.policy.get(role) or {}).get("grant") if role in self.handles else None
        mode = grant.get("evaluation") if isinstance(grant, dict) else None
        return mode if mode in ("exact", "noisy") else None

    def noisy_metrics(self, role: str, losses: np.ndarray, correct: np.ndarray | None,
                      prefix: str = "test_") -> dict[str, float]:
        """Differentially private loss (and accuracy) from per-row ``losses`` and hits, with the
        epsilon the runner charged for this evaluation (call only when it was ``"noisy"``)."""
        from jupyter_fed.privacy.evaluation import noisy_metrics

        grant = (self.ctx.policy.get(role) or {})["grant"]
        return noisy_metrics(losses, correct, float(grant["evaluation_epsilon"]),
                             float(grant["evaluation_loss_bound"]), prefix)
