"""Growing one iteration's trees at the coordinator from summed gradient histograms.

scikit-learn's split finder, vectorised over nodes, predictors and bins: for a node with gradient
and hessian sums ``G, H``, a split sending bins ``<= b`` left scores

    gain = G_L² / (H_L + λ) + G_R² / (H_R + λ) - G² / (H + λ)

(``λ`` = ``l2_regularization``, plus scikit-learn's 1e-15), over the splits that leave at least
``min_samples_leaf`` rows and a hessian sum of 1e-3 on each side; the best positive gain wins, the
first one on a tie (predictors, then bins, in order). A node is split only while it is shallower
than ``max_depth`` and holds at least ``2 · min_samples_leaf`` rows, and never when a runner
withheld its histogram (fewer of its rows there than its policy's minimum). A leaf's value is
``-learning_rate · G / (H + λ)``.

Trees grow level by level: every level is one exchange with the runners. Of each split node's
two children the runners send the histograms of the one with fewer rows only; the other's is the
parent's minus it (scikit-learn's subtraction trick), which halves the rows scanned and the bytes
sent below the root. The trees of a multiclass iteration grow side by side in the same exchanges.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from jupyter_fed.packages.gbm._trees import slots

__all__ = ["Grower"]

MIN_HESSIAN = 1e-3
TINY = 1e-15


class Grower:
    """One iteration's ``K`` trees while they grow.

    Parameters
    ----------
    n_trees, depth
        Trees per iteration and ``max_depth``.
    n_bins
        Bins of every predictor (``n_edges + 1``).
    min_samples_leaf, l2, learning_rate
        scikit-learn's hyper-parameters of the same names.
    constant_hessian
        Hessians are 1 (squared error): row counts stand for hessian sums.
    """

    def __init__(self, n_trees: int, depth: int, n_bins: np.ndarray, *, min_samples_leaf: int,
                 l2: float, learning_rate: float, constant_hessian: bool) -> None:
        m = slots(depth)
        self.k, self.depth, self.n_bins = n_trees, depth, np.asarray(n_bins, np.intp)
        self.msl, self.l2, self.lr, self.constant = min_samples_leaf, l2, learning_rate, \
            constant_hessian
        self.feature = np.full((n_trees, m), -1, np.int32)
        self.bin = np.zeros((n_trees, m), np.uint8)
        self.gain = np.zeros((n_trees, m))
        self.stats = np.zeros((n_trees, m, 3))  # G, H, count of every node reached
        self.open = np.zeros((n_trees, m), bool)
        """Nodes whose histograms the next exchange asks for."""
        self.open[:, 0] = True
        self.wanted = self.open.copy()
        """Nodes of the current level to split (when their histograms allow it)."""
        self.parents: dict[tuple[int, int], np.ndarray] = {}
        """Summed histograms of the last level's split nodes, to derive unsent children."""
        self.level = 0

    @property
    def bins(self) -> int:
        """Bins per predictor in the histograms (the widest predictor's)."""
        return int(self.n_bins.max()) if len(self.n_bins) else 1

    def open_nodes(self) -> list[tuple[int, int]]:
        """(tree, slot) of the nodes whose histograms the next exchange asks for, in order."""
        return [(int(k), int(m)) for k, m in zip(*np.nonzero(self.open), strict=True)]

    def split(self, hist: np.ndarray, withheld: Iterable[int]) -> None:
        """Split the level's nodes from the summed histograms of the open nodes (open nodes ×
        predictors × bins × [G, H, count]); pairs some runner ``withheld`` become leaves. Opens
        the next level."""
        asked = self.open_nodes()
        hist = np.asarray(hist, np.float64)
        if hist.shape[0] != len(asked):
            raise ValueError(f"{hist.shape[0]} histograms for {len(asked)} open nodes")
        skip = set(withheld)
        known: dict[tuple[int, int], np.ndarray] = {}
        for i, (k, m) in enumerate(asked):
            if i in skip:
                continue
            known[(k, m)] = hist[i]
            if m > 0:
                sib = m + 1 if m % 2 else m - 1
                known[(k, sib)] = self.parents[(k, (m - 1) // 2)] - hist[i]
        nodes = [n for n in zip(*np.nonzero(self.wanted), strict=True) if n in known]
        nodes = [(int(k), int(m)) for k, m in nodes]
        self.parents = {}
        self.open[:] = False
        self.wanted[:] = False
        if nodes:
            self._split([known[n] for n in nodes], nodes)
        self.level += 1

    def _split(self, hists: list[np.ndarray], nodes: list[tuple[int, int]]) -> None:
        stacked = np.stack(hists)
        g, h, c = stacked[..., 0], stacked[..., 1], stacked[..., 2]
        if self.constant:
            h = c
        totals = np.stack([g[:, 0].sum(-1), h[:, 0].sum(-1), c[:, 0].sum(-1)], axis=-1) \
            if len(self.n_bins) else np.zeros((len(nodes), 3))
        if self.level == 0:  # the roots' sums come from their histograms
            for i, (k, m) in enumerate(nodes):
                self.stats[k, m] = totals[i]
        feature, bins, gain, left = self._best(g, h, c, totals)
        for i, (k, m) in enumerate(nodes):
            if feature[i] < 0:
                continue
            self.feature[k, m], self.bin[k, m], self.gain[k, m] = feature[i], bins[i], gain[i]
            lo, hi = 2 * m + 1, 2 * m + 2
            self.stats[k, lo] = left[i]
            self.stats[k, hi] = self.stats[k, m] - left[i]
            if self.level + 1 >= self.depth:
                continue
            for child in (lo, hi):
                self.wanted[k, child] = self.stats[k, child, 2] >= 2 * self.msl
            if self.wanted[k, lo] or self.wanted[k, hi]:
                self.open[k, lo if self.stats[k, lo, 2] <= self.stats[k, hi, 2] else hi] = True
                self.parents[(k, m)] = hists[i]

    def _best(self, g: np.ndarray, h: np.ndarray, c: np.ndarray, totals: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Best split of every node: predictor (-1: none), bin, gain, left-child sums."""
        n = len(totals)
        lam = self.l2 + TINY
        gl, hl, cl = np.cumsum(g, -1), np.cumsum(h, -1), np.cumsum(c, -1)
        gt, ht, ct = (totals[:, i][:, None, None] for i in range(3))
        gr, hr, cr = gt - gl, ht - hl, ct - cl
        valid = (np.arange(g.shape[-1])[None, :] < (self.n_bins[:, None] - 1))[None]
        valid = valid & (cl >= self.msl) & (cr >= self.msl) & (hl >= MIN_HESSIAN) & \
            (hr >= MIN_HESSIAN)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = gl**2 / (hl + lam) + gr**2 / (hr + lam) - gt**2 / (ht + lam)
        gain = np.where(valid & (gain > 0), gain, -np.inf).reshape(n, -1)
        best = gain.argmax(axis=1) if gain.size else np.zeros(n, np.intp)
        score = gain[np.arange(n), best] if gain.size else np.full(n, -np.inf)
        width = g.shape[-1]
        feature = np.where(np.isfinite(score), best // width, -1).astype(np.int32)
        bins = (best % width).astype(np.uint8)
        f, b = np.maximum(feature, 0), bins.astype(np.intp)
        rows = np.arange(n)
        left = np.stack([gl[rows, f, b], hl[rows, f, b], cl[rows, f, b]], axis=-1) \
            if gain.size else np.zeros((n, 3))
        return feature, bins, np.where(np.isfinite(score), score, 0.0), left

    def finish(self, edges: np.ndarray) -> dict[str, np.ndarray]:
        """The grown trees as (K, M) arrays: leaf values, real thresholds, gains, counts."""
        reached = self.stats[..., 2] > 0
        leaf = (self.feature < 0) & reached
        value = np.where(leaf, -self.lr * self.stats[..., 0] / (self.stats[..., 1] + self.l2 +
                                                              TINY), 0.0)
        inner = self.feature >= 0
        threshold = np.zeros(self.feature.shape)
        if inner.any():
            threshold[inner] = edges[self.feature[inner], self.bin[inner].astype(np.intp)]
        return {"feature": self.feature.copy(), "bin": self.bin.copy(), "value": value,
                "threshold": threshold, "gain": self.gain.copy(),
                "count": self.stats[..., 2].copy()}

    def tensors(self) -> dict[str, np.ndarray]:
        """What a runner needs to route its rows to the open nodes."""
        return {"tree.feature": self.feature.copy(), "tree.bin": self.bin.copy(),
                "open": self.open.astype(np.uint8)}
