"""Differential privacy of splitnn's exchanges: what a step costs, and the noise it adds.

With ``differential_privacy_params`` every vector that leaves a party about one row — a party's
embedding of the row, the label party's gradient of the loss with respect to it — is clipped to
an L2 norm (``embedding_clip`` / ``gradient_clip``) and gets Gaussian noise. A row's vector leaves
once per epoch (training rows), once per evaluated model (test rows: ``num_rounds + 1``), once per
prediction session (predicted rows). The noise multiplier is the one for which that many Gaussian
releases of sensitivity ``clip`` compose (zero-concentrated DP, ``rho = k / (2 sigma^2)``) to the
session's (epsilon, delta); the ledger is charged ``epsilon / k`` and ``delta / k`` by each step that
releases every row's vector once more (the first exchange of an epoch; later exchanges of the
epoch release other rows: parallel composition), so a session costs at most its (epsilon, delta).

What it does not cover: the parties' networks are trained on exact values. Later embeddings (and
gradients) depend on the networks, and so, beyond each row's own noisy vectors, on other rows'
values. The README says so; a dataset whose policy requires DP refuses splitnn (its ``start``
step spends nothing and reads the rows).

Evaluations: the label party's ``head`` with ``eval`` measures the model on the test rows (and,
without DP, its exchange's training loss on the training rows), and the feature-importance
steps summarise SHAP values of the training rows; each declares it (``evaluation=True``), and an
exchange that trains declares the training round (``trains=True``) that earns the runner's one
exact evaluation per round.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.privacy.accounting import PrivacyCost

__all__ = ["noise_multiplier", "privacy_cost", "privatize", "releases", "session_sigma"]


def releases(mode: str, role: str, num_rounds: int) -> int:
    """How often one row's vector leaves over the session, on the dataset of ``role``."""
    if mode == "predict":
        return 1
    return int(num_rounds) + 1 if role == "test" else int(num_rounds)


def noise_multiplier(epsilon: float, delta: float, k: int) -> float:
    """sigma / clip for ``k`` Gaussian releases within (epsilon, delta): zCDP with
    ``epsilon = rho + 2 sqrt(rho ln(1/delta))`` (Bun & Steinke 2016, Prop. 1.3)."""
    log = math.log(1.0 / delta)
    root_rho = math.sqrt(log + epsilon) - math.sqrt(log)
    rho = root_rho * root_rho
    return math.sqrt(k / (2.0 * rho))


def privatize(values: np.ndarray, clip: float, sigma: float, rng: np.random.Generator
              ) -> np.ndarray:
    """Rows clipped to L2 norm ``clip``, plus N(0, (sigma * clip)^2) per value."""
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    scaled = values * np.minimum(1.0, clip / np.maximum(norms, 1e-12))
    return (scaled + rng.normal(0.0, sigma * clip, size=values.shape)).astype(np.float32)


def _dp(params: Mapping[str, Any]) -> dict[str, Any] | None:
    cfg = params.get("model_config")
    dp = cfg.get("differential_privacy_params") if isinstance(cfg, dict) else None
    return dp if isinstance(dp, dict) else None


def _share(dp: Mapping[str, Any], k: int, cap: float) -> PrivacyCost:
    """One release's share of the session's (epsilon, delta); delta never above the cap."""
    return PrivacyCost(float(dp["epsilon"]) / k, min(float(dp.get("delta", 1e-6)) / k, cap))


def privacy_cost(step: str, params: dict[str, Any], facts: Mapping[str, Any]
                 ) -> dict[str, PrivacyCost]:
    """Dataset role → what a step spends (see the module docstring)."""
    dp = _dp(params)
    mode = str((params.get("model_config") or {}).get("vfl_mode", "train"))
    rounds = max(int(params.get("num_rounds") or 1), 1)
    out: dict[str, PrivacyCost] = {role: PrivacyCost(0.0) for role in facts}
    if step == "start":
        return out
    new_epoch = bool(params.get("new_epoch"))
    # a training round: an exchange that trains (the head on batches, a bottom network on its
    # gradients or embedding the next batches) — not one that only measures
    training = mode == "train" and bool(
        params.get("train") if step == "head" else
        step == "forward" and (params.get("apply") or params.get("forward")))
    evaluating = mode == "train" and step == "head" and bool(params.get("eval"))
    if "train" in facts:
        releasing = step in ("forward", "head") and new_epoch if mode == "train" else True
        cost = _share(dp, releases(mode, "train", rounds), facts["train"].delta_cap) \
            if dp is not None and releasing and step != "predict" else PrivacyCost(0.0)
        # the training loss of the round's evaluated exchange (never under DP: it would escape
        # the accounting), and the SHAP summaries of the training rows, measure a model there
        measures = (evaluating and training and dp is None) or \
            (mode == "train" and step in ("explain_head", "explain_finish"))
        out["train"] = cost + PrivacyCost(0.0, trains=training, evaluation=measures,
                                          party_model=measures)
    if "test" in facts and mode == "train":
        cost = PrivacyCost(0.0)
        if step == "forward" and params.get("test") and dp is not None:
            cost = _share(dp, releases(mode, "test", rounds), facts["test"].delta_cap)
        if evaluating:  # the head and bottom network live at the party, not in the request
            cost = cost + PrivacyCost(0.0, evaluation=True, party_model=True)
        out["test"] = cost
    return out


def session_sigma(dp: Any, ctx_policy: Mapping[str, Any], role: str, mode: str,
                  num_rounds: int) -> float:
    """The noise multiplier of every release on ``role``: the session's epsilon, and the delta
    that :func:`privacy_cost` charges (``delta / k`` capped by the policy, ``k`` times) — the same
    for the exchange that is charged and for the later exchanges of its epoch (other rows)."""
    grant = (ctx_policy.get(role) or {}).get("grant") or {}
    k = releases(mode, role, num_rounds)
    cap = float(grant.get("delta_cap", dp.delta))
    return noise_multiplier(float(dp.epsilon), min(float(dp.delta) / k, cap) * k, k)
