"""Data valuation inside the vertical plans: the two config sections and the Shapley maths.

``influence_score`` (on by default) values each *party* — each data set of a vertical session —
by its Shapley value in the game whose players are the parties and whose value of a coalition
``S`` is how much the validation loss falls when the parties of ``S`` contribute and every other
party's contribution (its embedding, its partial linear predictor) is replaced by a neutral
baseline: ``v(S) = L(∅) - L(S)``. The values add up to ``L(∅) - L(all)``, the whole model's gain
over the baseline, so each party's *share* is its value over that total. The label party
computes the losses from what a model evaluation already gives it (every party's contribution on
the validation rows), so influence costs no extra exchange; only one number per party leaves.

``feature_importance_score`` (off by default) asks for SHAP values of each party's own features
at the end of training (see each package's ``_importance`` / ``_valuation`` module).

Pure numpy: the plan and the runners both import this module.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["EXACT_PARTIES", "FeatureImportanceScore", "ImportanceParams", "InfluenceParams",
           "InfluenceScore", "Shapley", "evals_problems", "shapley", "subsample_rows"]

EXACT_PARTIES = 6
"""Up to this many parties the Shapley values are exact (all ``2^k`` coalitions); beyond it they
are truncated Monte-Carlo estimates over random orderings of the parties."""

MAX_EVALUATIONS = 20_000
"""Coalition values one round's Monte-Carlo estimate computes at most when ``max_eval_len`` is
``None`` (the ``rel_thresh`` rule stops it long before for any sensible number of parties)."""

DEFAULT_SUBSAMPLE = 200
"""Rows SHAP values are computed on when ``subsample`` is ``None``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InfluenceParams(_Strict):
    """How the Shapley values are computed each round."""

    rel_thresh: float = Field(0.01, gt=0, lt=1, allow_inf_nan=False, description=(
        "relative tolerance of the Monte-Carlo estimate (more than 6 parties): an ordering stops "
        "adding parties once the coalition's loss is within this share of the whole model's "
        "gain, and sampling stops once a round of orderings moves no value by more than this "
        "share of that gain"))
    max_eval_len: int | None = Field(None, ge=1, le=1_000_000, description=(
        "the most coalition losses (validation-loss evaluations) one round may compute; the "
        "exact values need 2^parties of them, so a smaller limit switches to the Monte-Carlo "
        f"estimate; None: up to {MAX_EVALUATIONS:,}"))


class InfluenceScore(_Strict):
    """``model_config["influence_score"]``: each party's Shapley value, every round."""

    enable: bool = True
    params: InfluenceParams = Field(default_factory=InfluenceParams)


class ImportanceParams(_Strict):
    """How each party's SHAP values are computed at the end of training."""

    max_evals: int | None = Field(None, ge=3, le=100_000, description=(
        "model evaluations the permutation explainer may spend per explained row (at least "
        "2 x features + 1); None: 2 x (2 x features + 1), two antithetic orderings"))
    subsample: int | float | None = Field(None, description=(
        "rows explained: a count (>= 1) or a share of the training rows (0 < share <= 1); "
        f"None: {DEFAULT_SUBSAMPLE}"))
    random_seed: int = Field(23, ge=0, lt=2**31, description="which rows are explained and "
                             "which orderings the explainer draws")

    @field_validator("subsample")
    @classmethod
    def _subsample(cls, s: int | float | None) -> int | float | None:
        if isinstance(s, bool) or (s is not None and (s <= 0 or (isinstance(s, float)
                                                                   and s > 1))):
            raise ValueError("must be a row count >= 1 or a share in (0, 1]")
        return s


class FeatureImportanceScore(_Strict):
    """``model_config["feature_importance_score"]``: SHAP values of every party's features."""

    enable: bool = False
    params: ImportanceParams = Field(default_factory=ImportanceParams)


def evals_problems(section: FeatureImportanceScore, widest: int) -> list[dict[str, str]]:
    """The field error when ``max_evals`` cannot pay for one antithetic ordering of the widest
    party's columns (shap's permutation explainer refuses fewer), as ``ConfigError`` details."""
    evals = section.params.max_evals
    if not section.enable or evals is None or evals >= 2 * widest + 1:
        return []
    return [{"field": "model_config.feature_importance_score.params.max_evals",
             "error": f"must be at least 2 x {widest} + 1 (one antithetic ordering of the "
                      "widest party's columns)"}]


def subsample_rows(n: int, params: ImportanceParams) -> np.ndarray:
    """The aligned rows explained: the same at every party (same ``n``, same seed)."""
    s = params.subsample
    if s is None:
        k = DEFAULT_SUBSAMPLE
    elif isinstance(s, float):
        k = max(1, math.ceil(s * n))
    else:
        k = int(s)
    k = min(k, n)
    rng = np.random.default_rng([params.random_seed, n])
    return np.sort(rng.choice(n, size=k, replace=False))


@dataclass
class Shapley:
    """One round's Shapley values and how they were found."""

    values: dict[str, float]
    method: str
    """``exact`` or ``monte_carlo``."""
    evaluations: int
    """Coalition losses computed."""
    baseline_loss: float
    """``L(∅)``: every party at its baseline."""
    loss: float
    """``L(all)``: the model itself."""


def shapley(players: Sequence[str], loss: Callable[[frozenset[int]], float], *,
            rel_thresh: float = 0.01, max_eval_len: int | None = None, seed: int = 0) -> Shapley:
    """Shapley values of ``players`` for the gain ``v(S) = loss(∅) - loss(S)``.

    Parameters
    ----------
    players
        The parties' names, in a fixed order (coalitions are sets of their positions).
    loss
        Validation loss with the parties of the coalition contributing and the others masked.
    rel_thresh
        The Monte-Carlo estimate's relative tolerance (truncation and stopping, see
        :class:`InfluenceParams`).
    max_eval_len
        The most calls of ``loss``; ``None``: :data:`MAX_EVALUATIONS`.
    seed
        Seeds the orderings of the Monte-Carlo estimate (the exact values need none).
    """
    k = len(players)
    cache: dict[frozenset[int], float] = {}

    def v(s: frozenset[int]) -> float:
        if s not in cache:
            cache[s] = float(loss(s))
        return cache[s]

    limit = MAX_EVALUATIONS if max_eval_len is None else max(int(max_eval_len), 2)
    empty, full = frozenset(), frozenset(range(k))
    l0, l1 = v(empty), v(full)
    if k <= EXACT_PARTIES and 2 ** k <= limit:
        phi = np.zeros(k)
        for i in range(k):
            others = [j for j in range(k) if j != i]
            for size in range(k):
                weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
                for s in itertools.combinations(others, size):
                    coalition = frozenset(s)
                    phi[i] += weight * (v(coalition) - v(coalition | {i}))
        return Shapley(dict(zip(players, phi.tolist(), strict=True)), "exact", len(cache),
                       l0, l1)
    return _monte_carlo(players, v, cache, l0, l1, rel_thresh, limit, seed)


def _monte_carlo(players: Sequence[str], v: Callable[[frozenset[int]], float],
                 cache: dict[frozenset[int], float], l0: float, l1: float, rel_thresh: float,
                 limit: int, seed: int) -> Shapley:
    """Truncated Monte-Carlo permutation sampling (Ghorbani & Zou, *Data Shapley*, 2019)."""
    k = len(players)
    gain = l0 - l1
    scale = max(abs(gain), 1e-12)
    rng = np.random.default_rng([seed % 2**63, k])
    total, count = np.zeros(k), 0
    checkpoint = np.zeros(k)
    while len(cache) < limit and count < limit:  # (cached coalitions cost no evaluation)
        coalition: frozenset[int] = frozenset()
        prev, gains, cut = l0, np.zeros(k), False
        for i in rng.permutation(k):
            if abs(prev - l1) <= rel_thresh * scale:  # the rest adds (almost) nothing
                break
            if len(cache) >= limit and coalition | {int(i)} not in cache:
                cut = True  # out of evaluations: an unfinished ordering would bias the mean
                break
            coalition = coalition | {int(i)}
            cur = v(coalition)
            gains[i] = prev - cur
            prev = cur
        if cut:
            break
        total += gains
        count += 1
        if count % k == 0:  # one block of k orderings: did it move any estimate?
            est = total / count
            if count >= 2 * k and np.max(np.abs(est - checkpoint)) <= rel_thresh * scale:
                break
            checkpoint = est
    est = total / max(count, 1)
    return Shapley(dict(zip(players, est.tolist(), strict=True)), "monte_carlo", len(cache),
                   l0, l1)
