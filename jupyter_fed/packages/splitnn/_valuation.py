"""Dataset influence for splitnn, at the label party: each party's Shapley value, every evaluation.

A coalition's loss is the head's validation loss with the parties outside it *masked*: their
embedding of each validation row replaced by their mean embedding over the validation rows. The
label party holds every party's validation embeddings already (it evaluates the model on them), so
masking needs no exchange; only one number per party — its Shapley value — leaves, beside the
round's metrics. See :mod:`jupyter_fed.packages._valuation` for the game and its estimate.
"""

from __future__ import annotations

from typing import Any

from jupyter_fed.packages._valuation import shapley
from jupyter_fed.packages.splitnn.config import SplitNNConfig

__all__ = ["influence"]


def influence(cfg: SplitNNConfig, clients: list[str], inputs: list[Any], top: Any, y: Any,
              loss_fn: Any, seed: int) -> dict[str, Any]:
    """Shapley values of ``clients`` (whose validation embeddings are ``inputs``, in order) for
    the fall in ``loss_fn`` of the head ``top`` on labels ``y``."""
    import torch

    means = [e.mean(0, keepdim=True).expand_as(e) for e in inputs]

    def loss(coalition: frozenset[int]) -> float:
        with torch.no_grad():
            out = top(torch.cat([e if i in coalition else m
                                 for i, (e, m) in enumerate(zip(inputs, means, strict=True))], 1))
            return float(loss_fn(out, y))

    params = cfg.influence_score.params
    found = shapley(clients, loss, rel_thresh=params.rel_thresh,
                    max_eval_len=params.max_eval_len, seed=seed)
    return {"values": found.values, "method": found.method, "evaluations": found.evaluations,
            "baseline_loss": found.baseline_loss, "loss": found.loss}
