"""The label party's own record of where the rows are, and the minimum rows behind what it releases.

The coordinator sends the label party a *node array* (every aligned training row's slot) at each
level and at the end of a tree; the passive parties' histograms come through it too. Both are
the coordinator's to forge — it holds every row's ciphertext and the public key, so a "bin" of a
passive party may be ``Enc(k·g_i)`` of one row. So the label party trusts neither:

* it keeps the node array it expects (:func:`expected`): every row at the root when a tree
  starts; after a level, a row of a node split on its own column in the child its own value
  says, a row of a node split on a passive party's column in either child (only that party
  knows which), every other row where it was. :func:`follow` refuses any other node array;
* every node a node array holds has none or at least the policy's release minimum of rows
  (:func:`minimum`; the label party splits only into children that large, so a faithful relay
  never trips it);
* a histogram whose column does not add up to the node's own sums is refused before a split is
  chosen from it (:func:`columns_agree`);
* what leaves it about a tree — leaf values and row counts, split gains — it computes from its
  own gradients over the node array (:func:`released`), after checking that the sums the
  histograms gave agree with them (:func:`agree`): forged histograms fail the session instead of
  shaping what is released.

What remains (see the README): *which* bin wins a split is decided over the passive parties'
histograms, which the label party cannot check before it answers, and two node arrays that
differ by a few rows give a difference of two allowed aggregates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import StepContext

__all__ = ["agree", "columns_agree", "expected", "follow", "minimum", "released"]

_UNFAITHFUL = "the relay is not faithful; start a new session"


def minimum(ctx: StepContext) -> int:
    """Fewest rows behind any aggregate a party releases: the training dataset's release minimum
    for one predictor, as HFL gbm's nodes."""
    from jupyter_fed.privacy.suppression import release_minimum

    return release_minimum(ctx.policy.get("train") or {}, 1)


def expected(rows: int, node: np.ndarray | None = None, route: np.ndarray | None = None,
             passive: list[int] | None = None) -> dict[str, np.ndarray]:
    """The next node array's constraints: where every row must be (``n.expect``) and the slots
    whose rows may go to either child (``n.flex``, split on a passive party's column). With
    only ``rows``: a tree's start, every row at the root."""
    if node is None:
        return {"n.expect": np.zeros(rows, np.int32), "n.flex": np.zeros(0, np.int32)}
    assert route is not None
    return {"n.expect": np.where(route >= 0, route, node).astype(np.int32),
            "n.flex": np.asarray(passive or [], np.int32)}


def follow(arrays: dict[str, np.ndarray], node: np.ndarray, least: int, top: int) -> None:
    """Refuse a node array that does not follow the tree, or that holds a node of fewer than
    ``least`` rows (but some). ``top``: the number of slots."""
    expect, flex = arrays["n.expect"], arrays["n.flex"]
    if node.shape != expect.shape or node.min(initial=0) < 0 or node.max(initial=0) >= top:
        raise ConfigError("the coordinator sent a malformed node array", _UNFAITHFUL)
    either = np.isin(expect, flex)
    ok = np.where(either, (node == 2 * expect + 1) | (node == 2 * expect + 2), node == expect)
    if not ok.all():
        raise ConfigError("the coordinator sent a node array that does not follow the tree",
                          _UNFAITHFUL)
    here = np.bincount(node, minlength=top)
    if ((here > 0) & (here < least)).any():
        raise ConfigError(f"the coordinator sent a node of fewer than {least} rows: the label "
                          "party splits none that small", _UNFAITHFUL)


def _sums(node: np.ndarray, grad: np.ndarray, hess: np.ndarray, top: int) -> np.ndarray:
    """slots × [G, H, count] over each slot's whole subtree."""
    out = np.stack([np.bincount(node, grad, top), np.bincount(node, hess, top),
                    np.bincount(node, minlength=top).astype(np.float64)], axis=-1)
    for s in range(top - 1, 0, -1):
        out[(s - 1) // 2] += out[s]
    return out


def agree(stats: np.ndarray, node: np.ndarray, grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """The label party's own sums per slot (slots × [G, H, count]), after checking them against
    the ones the grower took from the histograms (``stats``, at the slots it reached): a
    difference beyond the encoding's rounding means some histogram was forged."""
    own = _sums(node, grad, hess, len(stats))
    reached = stats[:, 2] > 0
    tol = 1e-6 * (1.0 + own[reached, 2])
    if not (np.array_equal(own[reached, 2], stats[reached, 2]) and
            (np.abs(own[reached, :2] - stats[reached, :2]) <= tol[:, None]).all()):
        raise ConfigError("the histograms relayed to the label party do not add up to its "
                          "own gradients over the node array", _UNFAITHFUL)
    return own


def columns_agree(hist: np.ndarray, pos: np.ndarray, grad: np.ndarray, hess: np.ndarray,
                  skip: set[int]) -> None:
    """Refuse histograms (open nodes × columns × bins × [G, H, count]) of which some column does
    not add up, over its bins, to the node's own sums over the node array (``pos``: each row's
    open node, -1 elsewhere) — before any split is chosen from them. Nodes in ``skip`` (withheld
    by a passive party) are not split and not checked."""
    k = hist.shape[0]
    inside = pos >= 0
    at = pos[inside]
    own = np.stack([np.bincount(at, grad[inside], k), np.bincount(at, hess[inside], k),
                    np.bincount(at, minlength=k).astype(np.float64)], axis=-1)
    off = np.abs(hist.sum(axis=2) - own[:, None, :]) > 1e-6 * (1.0 + own[:, None, 2:])
    bad = off.any(axis=(1, 2))
    bad[[i for i in skip if 0 <= i < k]] = False
    if bad.any():
        raise ConfigError("a histogram relayed to the label party does not add up to its own "
                          "gradients over the node array", _UNFAITHFUL)


def released(done: dict[str, Any], own: np.ndarray, lr: float, l2: float) -> dict[str, Any]:
    """One tree's leaf values, gains and counts (as ``Grower.finish`` gives them, first tree
    only) recomputed from the label party's own sums ``own`` over the node array: at the slots
    the grower reached, nothing elsewhere."""
    from jupyter_fed.packages.gbm.parts import TINY

    feature = done["feature"][0]
    reached = done["count"][0] > 0
    g, h, c = own[:, 0], own[:, 1], own[:, 2]
    lam = l2 + TINY
    value = np.where(reached & (feature < 0), -lr * g / (h + lam), 0.0)
    gain = np.zeros(len(feature))
    for m in np.flatnonzero(feature >= 0).tolist():
        lo, hi = 2 * m + 1, 2 * m + 2
        gain[m] = g[lo] ** 2 / (h[lo] + lam) + g[hi] ** 2 / (h[hi] + lam) - g[m] ** 2 / (h[m] + lam)
    out = dict(done)
    out["value"] = np.where(reached, value, 0.0)[None]
    out["gain"] = gain[None]
    out["count"] = np.where(reached, c, 0.0)[None]
    return out
