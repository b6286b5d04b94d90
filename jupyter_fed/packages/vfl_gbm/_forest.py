"""Walking vfl_gbm's trees at the label party: real routes, and routes with parties left out.

A tree is stored as arrays over *slots* (breadth-first, slot ``m``'s children ``2m+1`` (left)
and ``2m+2`` (right)): the global column that splits each inner slot (``-1`` at a leaf), its
bin, the leaf values and each slot's training row count (its *cover*). A row's route needs a
decision at every inner slot it reaches: the label party makes those of its own columns from
its edges; the others arrive as left/right bits from the owning parties (``given``).

:func:`expected` is what a tree predicts when some parties' decisions are *unknown*: at a split
of such a party the row descends into both children, weighted by the share of the node's
training rows each child received — the "missing feature" treatment of trees that TreeSHAP's
path-dependent expectation uses (Lundberg et al., 2020). With every decision known it is the
tree's prediction; with none, the mean of its predictions over the training rows. Dataset
influence uses it to value coalitions of parties without any new exchange.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jupyter_fed.errors import ConfigError

__all__ = ["decisions", "expected", "given_bits", "owners", "walk"]

Given = Mapping[tuple[int, int], np.ndarray]
"""(tree, slot) → left (1) / right (0) bit of every row, from the party owning the split."""


def decisions(x: np.ndarray, cuts: list[np.ndarray], own: int, feature: np.ndarray,
              bins: np.ndarray, tree: int, given: Given) -> np.ndarray:
    """rows × slots: does the row go right at each inner slot of one tree? Splits of the label
    party's columns (global indices ``own …``, its ``cuts``) from ``x``; the others from
    ``given``."""
    right = np.zeros((len(x), len(feature)), bool)
    for m in np.flatnonzero(feature >= 0).tolist():
        f = int(feature[m]) - own
        if 0 <= f < len(cuts):
            right[:, m] = x[:, f] > cuts[f][int(bins[m])]
        else:
            left = given.get((tree, m))
            if left is None or len(left) != len(x):
                raise ConfigError(f"no left/right bits for split {m} of tree {tree}", "")
            right[:, m] = ~np.asarray(left).astype(bool)
    return right


def walk(right: np.ndarray, feature: np.ndarray, depth: int) -> np.ndarray:
    """The leaf slot of every row."""
    node = np.zeros(len(right), np.intp)
    rows = np.arange(len(right))
    for _ in range(depth):
        inner = feature[node] >= 0
        node = np.where(inner, 2 * node + 1 + right[rows, node], node)
    return node


def given_bits(tensors: Mapping[str, np.ndarray], clients: list[str]) -> dict[tuple[int, int],
                                                                              np.ndarray]:
    """The passive parties' ``keys/<party>`` (split × [tree, slot]) and ``bits/<party>`` (rows ×
    split) as one (tree, slot) → bits mapping."""
    out: dict[tuple[int, int], np.ndarray] = {}
    for q in clients:
        keys, b = tensors.get(f"keys/{q}"), tensors.get(f"bits/{q}")
        if keys is None or b is None:
            continue
        keys = np.asarray(keys, np.int64).reshape(-1, 2)
        if b.ndim != 2 or b.shape[1] != len(keys):
            raise ConfigError(f"{q}'s left/right bits are malformed", "")
        out.update({(int(t), int(m)): b[:, i] for i, (t, m) in enumerate(keys)})
    return out


def owners(feature: np.ndarray, offsets: list[int]) -> np.ndarray:
    """The position (in ``offsets``' order) of the party owning each slot's column; -1 at
    leaves. ``offsets`` holds each party's first global column, ascending."""
    out = np.searchsorted(np.asarray(offsets), feature, side="right") - 1
    return np.where(feature >= 0, out, -1)


def expected(right: np.ndarray, known: np.ndarray, feature: np.ndarray, value: np.ndarray,
             count: np.ndarray) -> np.ndarray:
    """One tree's output for every row when only the decisions at slots where ``known`` is set
    count: elsewhere the row goes both ways, weighted by the children's training covers.

    Parameters
    ----------
    right
        rows × slots, the row's decision at each inner slot (read only where ``known``).
    known
        slots, whether the split's decision is used (its owner is in the coalition).
    feature, value, count
        The tree's split columns (``-1``: leaf), leaf values and training row counts per slot.
    """
    m = len(feature)
    weight = np.zeros((len(right), m))
    weight[:, 0] = 1.0
    for s in range(m):  # breadth-first: a slot's weight is final before its children's
        if feature[s] < 0:
            continue
        lo, hi = 2 * s + 1, 2 * s + 2
        if known[s]:
            go = right[:, s]
            weight[:, hi] += np.where(go, weight[:, s], 0.0)
            weight[:, lo] += np.where(go, 0.0, weight[:, s])
        else:
            total = float(count[lo] + count[hi])
            share = float(count[hi]) / total if total > 0 else 0.5
            weight[:, hi] += share * weight[:, s]
            weight[:, lo] += (1.0 - share) * weight[:, s]
        weight[:, s] = 0.0
    return weight @ np.asarray(value, np.float64)
