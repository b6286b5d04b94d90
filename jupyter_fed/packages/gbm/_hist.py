"""Gradient histograms of one silo's rows, for the open nodes of the trees being grown.

A row reaches one node per tree; the histogram of a node holds, per predictor and bin, the sum of
the gradients, the sum of the hessians and the number of its rows there.

The coordinator asks for one child of each split node — the smaller — and derives its sibling as
the parent's histogram minus it (scikit-learn's subtraction trick: half the rows and half the
bytes per level). So a child is withheld when either it or its sibling holds fewer of this silo's
rows than the policy's minimum (but some): its histogram is left at zero, its position reported,
and the coordinator splits neither — an exact aggregate of a handful of rows, sent or derived,
would describe those rows.

The sums come from scikit-learn's compiled histogram builder (the one its ``HistGradientBoosting``
estimators use, over the same Fortran-ordered uint8 bin codes and float32 gradients): about four
times faster than one ``np.bincount`` per predictor and channel, and that is the runner's share
of every exchange. The builder lives in a private module of scikit-learn, so a version that moved
or changed it falls back to the ``np.bincount`` path — the same sums, slower.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages.gbm._trees import route

__all__ = ["histograms"]

_GRADIENT = np.float32
"""scikit-learn's gradient dtype (its ``G_H_DTYPE``): the builder reads only these."""


def histograms(codes: np.ndarray, grad: np.ndarray, hess: np.ndarray | None,
               tree_feature: np.ndarray, tree_bin: np.ndarray, open_nodes: np.ndarray,
               level: int, bins: int, minimum: int, threads: int = 1,
               compiled: bool = True, nodes: np.ndarray | None = None
               ) -> tuple[np.ndarray, list[int]]:
    """Histograms of the open nodes and the positions withheld.

    Parameters
    ----------
    codes
        Bin codes, predictors × rows (uint8), each below ``bins``.
    grad, hess
        Gradient and hessian per row and tree (rows × K); ``hess`` ``None`` when constant.
    tree_feature, tree_bin
        The trees grown so far (K × slots).
    open_nodes
        K × slots mask of the nodes asked for (all at depth ``level``; at most one per sibling
        pair).
    bins
        Bins per predictor in the result (the widest predictor's).
    minimum
        Fewest rows a node may hold here for its histogram to leave.
    threads
        Threads the compiled builder may use (the runner's per-step thread setting).
    compiled
        Use scikit-learn's builder when it is there (``False``: the ``np.bincount`` path).
    nodes
        The slots (K × rows) the rows reached after ``level`` levels, when the caller knows
        them (``_memo.tree_nodes``); else routed here from the root.

    Returns
    -------
    (numpy.ndarray, list[int])
        Histograms (open nodes × predictors × bins × [gradient, hessian, count]) in the order
        of ``numpy.nonzero(open_nodes)``, summed in float64 and sent as float32 (half the bytes;
        scikit-learn's own gradients are float32, and counts stay exact below 2**24 per bin);
        and the positions withheld.
    """
    if codes.size and int(codes.max()) >= bins:  # the compiled builder does not check
        raise ValueError("a bin code is not below the number of bins")
    n_feat = codes.shape[0]
    positions = [np.flatnonzero(row) for row in open_nodes.astype(bool)]
    total = sum(len(p) for p in positions)
    out = np.zeros((total, n_feat, bins, 3))
    withheld: list[int] = []
    builder = _compiled_builder() if compiled else None
    start = 0
    for k, slots_k in enumerate(positions):
        if not len(slots_k):
            continue
        node = route(tree_feature[k], tree_bin[k], codes, level) if nodes is None else nodes[k]
        here = np.bincount(node, minlength=tree_feature.shape[1])
        few = (here > 0) & (here < minimum)
        sibling = np.where(slots_k % 2 == 1, slots_k + 1, slots_k - 1) if level else slots_k
        small = few[slots_k] | few[sibling]
        withheld += [start + int(i) for i in np.flatnonzero(small)]
        block = out[start:start + len(slots_k)]
        g = grad[:, k]
        h = None if hess is None else hess[:, k]
        if builder is None or not _fill_compiled(builder, block, codes, g, h, node, slots_k,
                                                 small, bins, threads):
            _fill_bincount(block, codes, g, h, node, slots_k, small, bins)
        start += len(slots_k)
    return out.astype(np.float32), withheld


def _compiled_builder() -> Any:
    try:
        from sklearn.ensemble._hist_gradient_boosting.histogram import HistogramBuilder
    except ImportError:  # pragma: no cover - a scikit-learn that moved it
        return None
    return HistogramBuilder


def _fill_compiled(builder: Any, block: np.ndarray, codes: np.ndarray, g: np.ndarray,
                   h: np.ndarray | None, node: np.ndarray, slots: np.ndarray, small: np.ndarray,
                   bins: int, threads: int) -> bool:
    """One pass of the compiled builder per open node, over that node's rows; ``False`` (and
    ``block`` untouched) when this scikit-learn's builder does not take these arguments."""
    x = codes.T  # rows × predictors, Fortran-ordered: the builder's layout, without a copy
    if not x.flags.f_contiguous:
        x = np.asfortranarray(x)
    g32 = np.ascontiguousarray(g, dtype=_GRADIENT)
    h32 = np.ones(1, _GRADIENT) if h is None else np.ascontiguousarray(h, dtype=_GRADIENT)
    everyone = len(slots) == 1 and not small[0] and bool((node == slots[0]).all())
    found: list[tuple[int, np.ndarray]] = []
    try:
        make = builder(x, bins, g32, h32, h is None, max(int(threads), 1))
        for i, slot in enumerate(slots):
            rows = np.arange(len(node), dtype=np.uint32) if everyone else \
                np.flatnonzero(node == slot).astype(np.uint32)
            if small[i] or not len(rows):
                continue
            found.append((i, np.asarray(make.compute_histograms_brute(rows, None))))
    except (TypeError, ValueError):  # pragma: no cover - a scikit-learn with another signature
        return False
    for i, hist in found:
        block[i, :, :, 0] = hist["sum_gradients"]
        block[i, :, :, 2] = hist["count"]
        block[i, :, :, 1] = hist["count"] if h is None else hist["sum_hessians"]
    return True


def _fill_bincount(block: np.ndarray, codes: np.ndarray, g: np.ndarray, h: np.ndarray | None,
                   node: np.ndarray, slots: np.ndarray, small: np.ndarray, bins: int) -> None:
    """One ``np.bincount`` per predictor and channel over ``node · bins + code``: every open node
    of a tree in a few passes over the rows."""
    lookup = np.full(max(int(node.max(initial=0)), int(slots.max())) + 1, -1, np.intp)
    lookup[slots] = np.arange(len(slots))
    pos = lookup[node]
    keep = pos >= 0
    if small.any():
        keep &= ~small[np.maximum(pos, 0)]
    if keep.all():
        pos_k, codes_k, g_k, h_k = pos, codes, g, h
    else:
        rows = np.flatnonzero(keep)
        pos_k, codes_k, g_k = pos[rows], codes[:, rows], g[rows]
        h_k = None if h is None else h[rows]
    size = len(slots) * bins
    base = pos_k * bins
    for j in range(codes.shape[0]):
        idx = codes_k[j].astype(np.intp)  # same-type in-place add: no mixed-dtype loop
        idx += base
        c = np.bincount(idx, minlength=size).reshape(len(slots), bins)
        block[:, j, :, 0] = np.bincount(idx, g_k, size).reshape(len(slots), bins)
        block[:, j, :, 1] = c if h_k is None else np.bincount(idx, h_k, size).reshape(
            len(slots), bins)
        block[:, j, :, 2] = c
