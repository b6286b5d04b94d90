"""Dataset influence for vfl_gbm, at the label party: each party's Shapley value, every tree.

A coalition ``S`` of parties predicts a validation row with the boosted trees walked as usual at
the splits of ``S``'s columns, and at every other split *both* ways, weighted by the training
rows each child received (:func:`~jupyter_fed.packages.vfl_gbm._forest.expected`): the parties
outside ``S`` are treated as missing, as TreeSHAP does. The empty coalition predicts every tree's
mean over the training rows, the full one the model itself. A coalition's loss is the validation
loss of those predictions (the session's ``test_loss``: log-loss or squared error), and
:func:`~jupyter_fed.packages._valuation.shapley` turns the losses into Shapley values.

No new exchange: the label party already holds every passive party's left/right bit of every
validation row at each of that party's splits (``route`` sends them for the round's test
metrics) and the training row count of every node (from the histograms it decrypts). Only one
number per party leaves, beside the round's metrics. The running prediction of each coalition is
kept between trees (2^parties validation-sized arrays, up to :data:`CACHED` of them), so a round
costs one tree walk per coalition; under the Monte-Carlo estimate (beyond six parties) the label
party keeps the validation bits instead and walks a coalition through every tree again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jupyter_fed.packages._valuation import EXACT_PARTIES, shapley
from jupyter_fed.packages.vfl_gbm._forest import Given, expected, owners
from jupyter_fed.packages.vfl_gbm.config import VflGbmConfig

__all__ = ["CACHED", "Tree", "influence", "loss", "tree_influence"]

CACHED = 2 ** EXACT_PARTIES
"""Coalitions whose running validation predictions the label party keeps between trees."""


@dataclass
class Tree:
    """One tree as the label party sees it on the validation rows."""

    right: np.ndarray
    """rows × slots: each row's decision at every inner slot (own columns or given bits)."""
    owner: np.ndarray
    """slots: position of the party whose column splits the slot (-1: leaf)."""
    feature: np.ndarray
    value: np.ndarray
    count: np.ndarray

    def output(self, coalition: frozenset[int]) -> np.ndarray:
        known = np.isin(self.owner, sorted(coalition)) & (self.owner >= 0)
        return expected(self.right, known, self.feature, self.value, self.count)


def loss(raw: np.ndarray, y: np.ndarray, classification: bool) -> float:
    """The mean validation loss gbm reports as ``test_loss`` (binary log-loss on the raw score,
    or squared error)."""
    if classification:
        return float(np.mean(np.logaddexp(0.0, raw) - y * raw))
    return float(np.mean((raw - y) ** 2))


def _mask(coalition: frozenset[int]) -> int:
    return sum(1 << i for i in coalition)


def influence(cfg: VflGbmConfig, clients: Sequence[str], y: np.ndarray, baseline: float,
              current: Tree, cached: dict[int, np.ndarray], earlier: Callable[[], list[Tree]],
              seed: int) -> tuple[dict[str, Any], dict[int, np.ndarray]]:
    """Shapley values of ``clients`` for the fall in validation loss of the model ending with
    ``current``.

    Parameters
    ----------
    cached
        Coalition bitmask → its running raw prediction through the previous tree.
    earlier
        The previous trees (called at most once, only for a coalition not in ``cached``).

    Returns the ``influence`` output (values, method, evaluations, both losses) and the running
    predictions to keep for the next tree (none when more than :data:`CACHED` were computed).
    """
    past: list[Tree] | None = None
    kept: dict[int, np.ndarray] = {}
    overflow = False

    def before(coalition: frozenset[int]) -> np.ndarray:
        nonlocal past
        key = _mask(coalition)
        if key in cached:
            return cached[key]
        if past is None:
            past = earlier()
        raw = np.full(len(y), float(baseline))
        for t in past:
            raw = raw + t.output(coalition)
        return raw

    def coalition_loss(coalition: frozenset[int]) -> float:
        nonlocal overflow
        raw = before(coalition) + current.output(coalition)
        if len(kept) < CACHED:
            kept[_mask(coalition)] = raw
        else:  # a Monte-Carlo estimate: keeping a few would not spare the walks of the rest
            overflow = True
        return loss(raw, y, cfg.classification)

    params = cfg.influence_score.params
    found = shapley(list(clients), coalition_loss, rel_thresh=params.rel_thresh,
                    max_eval_len=params.max_eval_len, seed=seed)
    out = {"values": found.values, "method": found.method, "evaluations": found.evaluations,
           "baseline_loss": found.baseline_loss, "loss": found.loss}
    return out, ({} if overflow else kept)


def tree_influence(cfg: VflGbmConfig, clients: list[str], offsets: list[int],
                   arrays: dict[str, np.ndarray], meta: dict[str, Any], tree: int,
                   y: np.ndarray, right: np.ndarray, given: Given,
                   decide: Callable[[int, Given], np.ndarray]) -> dict[str, Any]:
    """The label party's ``finish`` step: the influence output of the model ending with tree
    ``tree`` (already appended to ``arrays["trees.*"]``). Updates, in ``arrays`` and ``meta``
    (the party's private state), the running coalition predictions and the validation bits of
    the passive parties' splits; ``decide(t, given)`` is tree ``t``'s rows × slots decisions."""
    params = cfg.influence_score.params
    if len(clients) > EXACT_PARTIES or (params.max_eval_len is not None and
                                        params.max_eval_len < 2 ** len(clients)):
        # Not every coalition is walked every tree: keep the validation bits to walk the
        # earlier trees again (the exact values never need them: all coalitions are kept).
        keys = np.array(sorted(given), np.int32).reshape(-1, 2)
        bits = np.column_stack([given[(int(t), int(m))] for t, m in keys]).astype(np.uint8) \
            if len(keys) else np.zeros((len(y), 0), np.uint8)
        arrays["tkeys"] = np.concatenate([arrays.get("tkeys", np.zeros((0, 2), np.int32)),
                                          keys])
        arrays["tbits"] = np.concatenate([arrays.get("tbits", np.zeros((len(y), 0), np.uint8)),
                                          bits], axis=1)

    def view(t: int, r: np.ndarray) -> Tree:
        feature = arrays["trees.feature"][t]
        return Tree(r, owners(feature, offsets), feature, arrays["trees.value"][t],
                    arrays["trees.count"][t])

    def earlier() -> list[Tree]:
        stored = {(int(t), int(m)): arrays["tbits"][:, i]
                  for i, (t, m) in enumerate(arrays.get("tkeys", np.zeros((0, 2))).tolist())}
        return [view(t, decide(t, stored)) for t in range(tree)]

    fresh = int(meta.get("infl_tree", -2)) == tree - 1
    cached = {int(k.split(".", 1)[1]): v for k, v in arrays.items()
              if k.startswith("infl.") and fresh}
    for k in [k for k in arrays if k.startswith("infl.")]:
        del arrays[k]
    out, kept = influence(cfg, clients, y, float(arrays["baseline"][0]), view(tree, right),
                          cached, earlier, cfg.seed * 1_000_003 + tree)
    arrays.update({f"infl.{k}": v for k, v in kept.items()})
    meta["infl_tree"] = tree
    return out
