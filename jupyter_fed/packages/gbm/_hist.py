"""Gradient histograms of one silo's rows, for the open nodes of the trees being grown.

A row reaches one node per tree; the histogram of a node holds, per predictor and bin, the sum of
the gradients, the sum of the hessians and the number of its rows there. One ``np.bincount`` per
predictor and channel over ``node · bins + code`` fills all open nodes at once, so a level costs a
few passes over the rows whatever the number of nodes.

The coordinator asks for one child of each split node — the smaller — and derives its sibling as
the parent's histogram minus it (scikit-learn's subtraction trick: half the rows and half the
bytes per level). So a child is withheld when either it or its sibling holds fewer of this silo's
rows than the policy's minimum (but some): its histogram is left at zero, its position reported,
and the coordinator splits neither — an exact aggregate of a handful of rows, sent or derived,
would describe those rows.
"""

from __future__ import annotations

import numpy as np

from jupyter_fed.packages.gbm._trees import route

__all__ = ["histograms"]


def histograms(codes: np.ndarray, grad: np.ndarray, hess: np.ndarray | None,
               tree_feature: np.ndarray, tree_bin: np.ndarray, open_nodes: np.ndarray,
               level: int, bins: int, minimum: int) -> tuple[np.ndarray, list[int]]:
    """Histograms of the open nodes and the positions withheld.

    Parameters
    ----------
    codes
        Bin codes, predictors × rows (uint8).
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

    Returns
    -------
    (numpy.ndarray, list[int])
        Histograms (open nodes × predictors × bins × [gradient, hessian, count]) in the order
        of ``numpy.nonzero(open_nodes)``, summed in float64 and sent as float32 (half the bytes;
        scikit-learn's own gradients are float32, and counts stay exact below 2**24 per bin);
        and the positions withheld.
    """
    n_feat = codes.shape[0]
    positions = [np.flatnonzero(row) for row in open_nodes.astype(bool)]
    total = sum(len(p) for p in positions)
    out = np.zeros((total, n_feat, bins, 3))
    withheld: list[int] = []
    start = 0
    for k, slots_k in enumerate(positions):
        if not len(slots_k):
            continue
        node = route(tree_feature[k], tree_bin[k], codes, level)
        lookup = np.full(tree_feature.shape[1], -1, np.intp)
        lookup[slots_k] = np.arange(len(slots_k))
        pos = lookup[node]
        here = np.bincount(node, minlength=tree_feature.shape[1])
        few = (here > 0) & (here < minimum)
        sibling = np.where(slots_k % 2 == 1, slots_k + 1, slots_k - 1) if level else slots_k
        small = few[slots_k] | few[sibling]
        withheld += [start + int(i) for i in np.flatnonzero(small)]
        keep = pos >= 0
        if small.any():
            keep &= ~small[np.maximum(pos, 0)]
        if keep.all():
            rows, pos_k, codes_k = None, pos, codes
        else:
            rows = np.flatnonzero(keep)
            pos_k, codes_k = pos[rows], codes[:, rows]
        g = grad[:, k] if rows is None else grad[rows, k]
        h = None if hess is None else (hess[:, k] if rows is None else hess[rows, k])
        size = len(slots_k) * bins
        base = pos_k * bins
        block = out[start:start + len(slots_k)]
        for j in range(n_feat):
            idx = codes_k[j].astype(np.intp)  # same-type in-place add: no mixed-dtype loop
            idx += base
            c = np.bincount(idx, minlength=size).reshape(len(slots_k), bins)
            block[:, j, :, 0] = np.bincount(idx, g, size).reshape(len(slots_k), bins)
            block[:, j, :, 1] = c if h is None else np.bincount(idx, h, size).reshape(
                len(slots_k), bins)
            block[:, j, :, 2] = c
        start += len(slots_k)
    return out.astype(np.float32), withheld
