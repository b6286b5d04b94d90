"""Session options every training package shares: ``balance_train_datasets``, ``seed``,
``save_best_model`` (the reference SDK's names).

- ``balance_train_datasets`` undersamples every class of a silo's training rows to the size of its
  rarest class (:func:`balanced_index`). It is decided by the labels, so it is refused beside
  differential privacy, whose accounting does not cover a data-dependent choice of rows.
- ``seed`` makes a session reproducible: every random draw (initial weights, batch order,
  undersampling) comes from a generator seeded with it and the round, never from global state.
- ``save_best_model`` hands back the model with the best federated metric instead of the last
  one (:func:`best_index`); ``metric: None`` asks for the last one, as in the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

__all__ = ["SaveBestModel", "balanced_index", "best_index", "need_in_memory", "round_seed"]


class SaveBestModel(BaseModel):
    """Which model a training session hands back: the best by ``metric`` (``mode`` min or max),
    or the last one when ``metric`` is ``None``."""

    model_config = ConfigDict(extra="forbid")

    metric: str | None = "loss"
    mode: Literal["min", "max"] = "min"

    @property
    def rule(self) -> tuple[str, str] | None:
        """``(metric, mode)``, or ``None`` for the last model."""
        return (self.metric, self.mode) if self.metric else None


def round_seed(seed: int, round: int) -> int:
    """The seed of one round's draws: different every round, the same in every run."""
    return (int(seed) * 1_000_003 + int(round)) % 2**63


def need_in_memory(handle: Any, columns: Sequence[str]) -> None:
    """Refuse, before anything is read, the options that need every training row at once
    (balanced undersampling, DP-SGD's Poisson sampling) on a dataset the runner streams."""
    from jupyter_fed.errors import ConfigError

    if not handle.fits_in_memory(list(columns)):
        raise ConfigError(f"dataset {handle.info.name!r} is larger than this runner keeps in "
                          "memory, and balance_train_datasets and differential privacy need "
                          "random access to every training row",
                          "train without them (rows are then streamed in shuffled batches), or "
                          "ask the custodian for a larger array_cache_mb and step_memory_mb")


def balanced_index(labels: np.ndarray, seed: int) -> np.ndarray:
    """Row numbers of a class-balanced undersample: every class cut to its rarest class's size.

    Parameters
    ----------
    labels
        One class label per row (any hashable numbers).
    seed
        Seeds the draw (use :func:`round_seed` so each round draws afresh and runs repeat).

    Returns
    -------
    numpy.ndarray
        Sorted row numbers (int64): for each class present, ``min(count)`` of its rows drawn
        without replacement. Sorted, so a step that reads rows in file order keeps that order.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(labels == c), size=int(counts.min()), replace=False)
            for c in classes]
    return np.sort(np.concatenate(keep)).astype(np.int64)


def best_index(history: Sequence[Mapping[str, Any]], rule: tuple[str, str] | None) -> int:
    """Index of the model to hand back: the best finite ``metric`` by ``mode`` (the earliest on a
    tie), else the last model (also when no model reports the metric)."""
    if not history:
        return -1
    if rule is None:
        return len(history) - 1
    metric, mode = rule
    scored = []
    for i, m in enumerate(history):
        v = m.get(metric)
        if isinstance(v, (int, float)) and math.isfinite(v):
            scored.append((v if mode == "min" else -v, i))
    return min(scored)[1] if scored else len(history) - 1
