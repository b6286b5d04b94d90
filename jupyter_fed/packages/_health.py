"""Signs that a model is learning nothing, so a useless result is never reported as a plain success.

A network fed unscaled features collapses to the majority class: AUC 0.5 every round, a training
loss in the thousands, and a session that says ``completed``. These checks read only what the
coordinator already has (federated metrics, training losses, and how many distinct classes each
client's test rows were assigned), and say what to try.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["HEADLINE", "learning_warnings"]

HEADLINE = ("roc_auc", "r2", "loss")
"""The metric watched for a model that does not move, in order of preference."""

EXPLODED = 10.0
"""A training loss this many times the initial model's federated loss counts as exploded."""


def _stalled(federated: Sequence[Mapping[str, Any]]) -> str | None:
    if len(federated) < 3:
        return None
    for metric in HEADLINE:
        values = [m.get(metric) for m in federated]
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            first = float(values[0])  # type: ignore[arg-type]
            if all(abs(float(v) - first) <= 1e-6 * max(1.0, abs(first)) for v in values):  # type: ignore[arg-type]
                return (f"the federated {metric} has not moved from its initial value "
                        f"{first:.4g} in {len(values) - 1} round(s): the model is not learning "
                        "(features on very different scales? try normalize: true, or another "
                        "learning_rate)")
            return None
    return None


def _one_class(diagnostics: Mapping[str, Mapping[str, Any]]) -> str | None:
    seen = {cid: d.get("predicted_classes") for cid, d in diagnostics.items()
            if isinstance(d, Mapping) and d.get("test_rows", 0) > 1}
    if seen and all(v == 1 for v in seen.values()):
        return (f"the model predicts one class for every test row ({', '.join(sorted(seen))}): "
                "it has collapsed to the majority class (unscaled features? try normalize: true, "
                "a lower learning_rate, or loss_weights)")
    return None


def _exploded(initial_loss: float | None, train: Mapping[str, Mapping[str, Any]],
              rnd: int) -> str | None:
    if initial_loss is None or not math.isfinite(initial_loss) or initial_loss <= 0:
        return None
    for cid, t in sorted(train.items()):
        loss = t.get("train_loss") if isinstance(t, Mapping) else None
        if isinstance(loss, (int, float)) and loss > EXPLODED * initial_loss:
            return (f"training loss exploded at {cid} in round {rnd}: {loss:.4g} against "
                    f"{initial_loss:.4g} for the initial model (learning_rate too high, or "
                    "features unscaled? try normalize: true)")
    return None


def learning_warnings(federated: Sequence[Mapping[str, Any]],
                      train: Mapping[str, Mapping[str, Any]],
                      diagnostics: Mapping[str, Mapping[str, Any]], rnd: int
                      ) -> dict[str, str]:
    """Warnings by kind (``stalled``, ``one_class``, ``exploded``) after round ``rnd``.

    Parameters
    ----------
    federated
        Federated metrics of every model so far, the initial one first.
    train
        Client id → that round's training report (``train_loss``).
    diagnostics
        Client id → ``{"predicted_classes", "test_rows"}`` for the latest evaluated model.
    """
    initial = federated[0].get("loss") if federated else None
    found = {"stalled": _stalled(federated), "one_class": _one_class(diagnostics),
             "exploded": _exploded(initial if isinstance(initial, (int, float)) else None,
                                   train, rnd)}
    return {k: v for k, v in found.items() if v}
