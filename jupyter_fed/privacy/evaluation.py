"""Noisy model metrics: what an evaluation beyond the per-round allowance releases.

Measuring a crafted model on a dataset is a query: five exact losses of a step-function model
recovered one person's target to two decimals. Beyond one evaluation per training round, a
runner answers with differential privacy instead: the number of rows, the sum of per-row losses
clipped to ``[0, bound]`` and the number of correct predictions each get a third of the epsilon
(Laplace, sensitivities 1, ``bound`` and 1); the metrics are their ratios. Ranking metrics (AUC)
and R², which have no small sensitivity, are not released.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.privacy.mechanisms import noisy_counts, noisy_vector

__all__ = ["noisy_metrics"]


def noisy_metrics(losses: np.ndarray, correct: np.ndarray | None, epsilon: float, bound: float,
                  prefix: str = "test_") -> dict[str, float]:
    """(epsilon, 0)-DP loss (and accuracy) of a model from per-row losses and hits."""
    losses = np.clip(np.asarray(losses, dtype=np.float64), 0.0, bound)
    parts = 3 if correct is not None else 2
    eps = epsilon / parts
    n = max(float(noisy_counts(np.array([len(losses)]), eps)[0]), 1.0)
    loss = float(noisy_vector(np.array([losses.sum()]), bound, eps)[0]) / n
    out = {f"{prefix}loss": float(np.clip(loss, 0.0, bound)), f"{prefix}num_examples": n,
           f"{prefix}noisy_epsilon": epsilon}
    if correct is not None:
        hits = float(noisy_counts(np.array([int(np.sum(correct))]), eps)[0])
        out[f"{prefix}accuracy"] = float(np.clip(hits / n, 0.0, 1.0))
    return out


def exact_evaluation(policy: Any) -> bool:
    """Whether the runner granted this step an exact evaluation of a model on a role's rows.

    ``policy`` is the role's entry of ``StepContext.policy`` (``None`` outside a runner). A step
    granted only a noisy one and that has no noisy version of its metrics reports none instead:
    an exact answer beyond the allowance is what a loss oracle feeds on.
    """
    grant = (policy or {}).get("grant") if isinstance(policy, dict) else None
    return not (isinstance(grant, dict) and grant.get("evaluation") == "noisy")
