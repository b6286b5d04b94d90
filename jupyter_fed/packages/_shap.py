"""SHAP values of one party's own features, with the ``shap`` library, at that party's runner.

A party explains the federated model as a function of *its* columns only, the other parties'
contributions held at their actual values for each explained row. When the party cannot
evaluate the model itself (a splitnn passive party holds no head), the explainer runs twice with
the same seed: the first pass records the perturbed inputs it asks for (answering zeros, which
the permutation explainer's choices do not depend on), the party turns them into what the model
needs from it (embeddings), the label party answers with the model's outputs, and the second pass
replays the same calls with those outputs. A digest of the recorded inputs makes sure the second
pass asked for exactly what the first did.

Only :func:`summarise`'s mean |SHAP| per feature leaves a runner, unless the dataset's policy sets
``release_shap_details`` (per-row values describe rows) — and either only when the runner granted
the step an exact evaluation of the rows (once per training round of the session): two summaries
over row sets that differ by one person describe that person. Otherwise :func:`withheld`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages._valuation import ImportanceParams

__all__ = ["BACKGROUND", "Replay", "background_rows", "explain", "minimum_rows", "record",
           "summarise", "withheld"]

BACKGROUND = 16
"""Background rows the masker draws masked features from: the explainer's cost grows with them."""

Model = Callable[[np.ndarray], np.ndarray]


def background_rows(n: int, params: ImportanceParams) -> np.ndarray:
    """Rows whose values stand in for masked features (the same draw at a party every time)."""
    rng = np.random.default_rng([params.random_seed, n, 1])
    return np.sort(rng.choice(n, size=min(BACKGROUND, n), replace=False))


def max_evals(params: ImportanceParams, width: int) -> int:
    """Model evaluations per explained row: two antithetic orderings unless the config says."""
    return params.max_evals if params.max_evals is not None else 2 * (2 * width + 1)


def explain(x: np.ndarray, background: np.ndarray, model: Callable[[int, np.ndarray], np.ndarray],
            params: ImportanceParams) -> np.ndarray:
    """SHAP values (rows x features [x outputs]) of ``model(row, inputs)`` for each row of ``x``,
    by shap's permutation explainer; ``model`` learns which explained row it is asked about."""
    import shap

    current = [0]

    def f(z: np.ndarray) -> np.ndarray:
        return model(current[0], np.asarray(z, dtype=np.float64))

    masker = shap.maskers.Independent(background.astype(np.float64), max_samples=len(background))
    explainer = shap.explainers.Permutation(f, masker, seed=params.random_seed)
    budget = max_evals(params, x.shape[1])
    values = []
    for i in range(len(x)):
        current[0] = i
        found = explainer(x[i:i + 1].astype(np.float64), max_evals=budget, silent=True)
        values.append(np.asarray(found.values[0], dtype=np.float64))
    return np.stack(values) if values else np.zeros((0, x.shape[1]))


def record(x: np.ndarray, background: np.ndarray, outputs: int, params: ImportanceParams
           ) -> tuple[np.ndarray, np.ndarray, str]:
    """The first pass: every perturbed input the explainer asks for, the explained row each
    belongs to, and their digest."""
    inputs: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    digest = hashlib.sha256()

    def model(row: int, z: np.ndarray) -> np.ndarray:
        inputs.append(z.copy())
        owner.append(np.full(len(z), row, dtype=np.int64))
        digest.update(np.ascontiguousarray(z).tobytes())
        return np.zeros((len(z), outputs)) if outputs > 1 else np.zeros(len(z))

    explain(x, background, model, params)
    width = x.shape[1]
    return (np.concatenate(inputs) if inputs else np.zeros((0, width)),
            np.concatenate(owner) if owner else np.zeros(0, dtype=np.int64), digest.hexdigest())


class Replay:
    """The second pass's model: the label party's outputs, in the order the first pass asked."""

    def __init__(self, answers: np.ndarray, owner: np.ndarray, digest: str) -> None:
        self.answers, self.owner, self.digest = answers, owner, digest
        self.offset = 0
        self.seen = hashlib.sha256()

    def __call__(self, row: int, z: np.ndarray) -> np.ndarray:
        end = self.offset + len(z)
        if end > len(self.answers) or not (self.owner[self.offset:end] == row).all():
            raise ConfigError("the explainer's second pass asked for other inputs than its "
                              "first", "start a new session")
        self.seen.update(np.ascontiguousarray(z).tobytes())
        out = self.answers[self.offset:end]
        self.offset = end
        return out[:, 0] if out.shape[1] == 1 else out

    def check(self) -> None:
        if self.offset != len(self.answers) or self.seen.hexdigest() != self.digest:
            raise ConfigError("the explainer's second pass asked for other inputs than its "
                              "first", "start a new session")


def minimum_rows(policy: dict[str, Any], width: int) -> int:
    """Fewest explained rows an aggregate may describe under the dataset's policy."""
    k = int(policy.get("min_count", 10))
    rows = policy.get("min_rows")
    return max(k, int(rows) if rows is not None else width + 5)


def summarise(values: np.ndarray, features: list[str], policy: dict[str, Any]
              ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """What may leave the party: mean |SHAP| per feature (JSON) and, only when the policy has
    ``release_shap_details``, the per-row values (rows x features x outputs)."""
    if len(values) < minimum_rows(policy, len(features)):
        raise PermissionDenied(f"feature importance over {len(values)} rows is below the "
                               "dataset's minimum rows for an aggregate",
                               "raise feature_importance_score.params.subsample")
    cube = values if values.ndim == 3 else values[:, :, None]
    scores = np.abs(cube).mean(axis=(0, 2))
    released = bool(policy.get("release_shap_details"))
    out = {"scores": dict(zip(features, scores.tolist(), strict=True)), "rows": len(values),
           "details_released": released}
    return out, ({"shap": cube.astype(np.float32)} if released else {})


def withheld(rows: int) -> dict[str, Any]:
    """What a party reports when the runner granted no exact evaluation of its rows: no score."""
    return {"scores": {}, "rows": rows, "details_released": False, "withheld": True}
