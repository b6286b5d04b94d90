"""The ensemble as arrays: what travels to the runners, what is checkpointed, what the kernel gets.

Every tree is stored densely, level by level, as a complete binary tree of depth ``max_depth``
(``M = 2**(max_depth+1) - 1`` slots; the children of slot ``i`` are ``2i+1`` and ``2i+2``), so
an ensemble is a handful of ``(T, K, M)`` arrays — ``T`` iterations, ``K`` trees per iteration
(one, or one per class for multiclass) — and predicting is ``max_depth`` vectorised gathers per
tree. ``feature`` is ``-1`` at leaves and unused slots; a row goes left when its bin code is
``<= bin`` (on raw values: ``x <= threshold``, the bin's upper edge, as scikit-learn splits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Ensemble", "route", "slots"]

PREFIX = "trees."
NAMES = ("feature", "bin", "value", "threshold", "gain", "count")
RUNNER_NAMES = ("feature", "bin", "value")
"""What a runner needs of the trees (the rest is for the kernel and feature importances)."""


def slots(depth: int) -> int:
    """Slots of one dense tree of ``depth`` levels of splits."""
    return 2 ** (depth + 1) - 1


@dataclass
class Ensemble:
    """Trees so far, the baseline raw prediction, and the bin edges they split on."""

    baseline: np.ndarray
    """(K,) raw prediction before any tree (the intercept-only model)."""
    depth: int
    edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """(F, max_bins-1) bin edges, padded; only the first ``n_edges[f]`` of row ``f`` count."""
    n_edges: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    """``feature`` (T,K,M) int32, ``bin`` uint8, ``value``/``threshold``/``gain``/``count``
    float64 — see the module's docstring."""
    prefix_digests: list[str] | None = field(default=None, repr=False, compare=False)
    """A worker's digests of this ensemble's prefixes, once computed (``_memo``)."""

    def __post_init__(self) -> None:
        k, m = len(self.baseline), slots(self.depth)
        empty = {"feature": np.zeros((0, k, m), np.int32), "bin": np.zeros((0, k, m), np.uint8)}
        for name in NAMES:
            self.arrays.setdefault(name, empty.get(name, np.zeros((0, k, m))))

    @property
    def n_iter(self) -> int:
        return int(self.arrays["feature"].shape[0])

    @property
    def n_trees_per_iteration(self) -> int:
        return len(self.baseline)

    def truncated(self, n_iter: int) -> Ensemble:
        """The model after its first ``n_iter`` iterations."""
        return Ensemble(self.baseline, self.depth, self.edges, self.n_edges,
                        {k: v[:n_iter] for k, v in self.arrays.items()})

    def appended(self, tree: dict[str, np.ndarray]) -> Ensemble:
        """This ensemble and one more iteration (``tree``: each name's (K, M) array)."""
        grown = {k: np.concatenate([v, tree[k][None].astype(v.dtype)]) for k, v in
                 self.arrays.items()}
        return Ensemble(self.baseline, self.depth, self.edges, self.n_edges, grown)

    # -- arrays on the wire and in checkpoints ---------------------------------------------------
    def tensors(self, runner: bool = False) -> dict[str, np.ndarray]:
        names = RUNNER_NAMES if runner else NAMES
        out = {PREFIX + n: self.arrays[n] for n in names}
        out.update({"baseline": np.asarray(self.baseline, np.float64),
                    "edges": np.asarray(self.edges, np.float64),
                    "n_edges": np.asarray(self.n_edges, np.int32)})
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], depth: int) -> Ensemble:
        """Rebuild from :meth:`tensors`; raises ``ValueError`` on inconsistent shapes."""
        baseline = np.asarray(tensors["baseline"], np.float64).reshape(-1)
        edges = np.asarray(tensors["edges"], np.float64)
        n_edges = np.asarray(tensors["n_edges"], np.int32).reshape(-1)
        if edges.ndim != 2 or len(n_edges) != edges.shape[0] or \
                (n_edges.size and (n_edges.min() < 0 or n_edges.max() > edges.shape[1])):
            raise ValueError("bin edges and their counts do not match")
        arrays = {n[len(PREFIX):]: np.asarray(v) for n, v in tensors.items()
                  if n.startswith(PREFIX) and n[len(PREFIX):] in NAMES}
        shape = None
        for name, arr in arrays.items():
            if arr.ndim != 3 or arr.shape[1:] != (len(baseline), slots(depth)) or \
                    (shape is not None and arr.shape[0] != shape):
                raise ValueError(f"trees.{name} has shape {arr.shape}")
            shape = arr.shape[0]
        feature = arrays.get("feature")
        if feature is not None and feature.size and (feature.max() >= len(n_edges)):
            raise ValueError("a tree splits on a predictor the model does not have")
        if "feature" in arrays:
            arrays["feature"] = arrays["feature"].astype(np.int32)
            arrays["bin"] = arrays["bin"].astype(np.uint8)
        return cls(baseline, depth, edges, n_edges, arrays)

    # -- prediction ----------------------------------------------------------------------------
    def raw_binned(self, codes: np.ndarray, start: np.ndarray | None = None, first: int = 0
                   ) -> np.ndarray:
        """Raw predictions (rows × K) of rows given as bin codes (predictors × rows), adding
        iterations ``first …`` to ``start`` (default: the baseline)."""
        n = codes.shape[1]
        raw = np.tile(self.baseline, (n, 1)) if start is None else start.copy()
        feature, bins, value = (self.arrays[k] for k in ("feature", "bin", "value"))
        for t in range(first, self.n_iter):
            for k in range(self.n_trees_per_iteration):
                leaf = route(feature[t, k], bins[t, k], codes, self.depth)
                raw[:, k] += value[t, k][leaf]
        return raw

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Raw predictions (rows × K) of raw predictor values (rows × predictors)."""
        x = np.asarray(x, np.float64)
        n = len(x)
        raw = np.tile(self.baseline, (n, 1))
        rows = np.arange(n)
        feature, thr, value = (self.arrays[k] for k in ("feature", "threshold", "value"))
        for t in range(self.n_iter):
            for k in range(self.n_trees_per_iteration):
                node = np.zeros(n, np.intp)
                for _ in range(self.depth):
                    f = feature[t, k][node]
                    inner = f >= 0
                    if not inner.any():
                        break
                    right = x[rows, np.where(inner, f, 0)] > thr[t, k][node]
                    node = np.where(inner, 2 * node + 1 + right, node)
                raw[:, k] += value[t, k][node]
        return raw

    def feature_importances(self) -> np.ndarray:
        """Total split gain per predictor, normalised to sum to 1 (zeros when no tree splits)."""
        f, gain = self.arrays["feature"].ravel(), self.arrays["gain"].ravel()
        inner = f >= 0
        total = np.bincount(f[inner], weights=gain[inner], minlength=len(self.n_edges))
        s = total.sum()
        return total / s if s > 0 else total


def route(feature: np.ndarray, bins: np.ndarray, codes: np.ndarray, depth: int,
          node: np.ndarray | None = None) -> np.ndarray:
    """Slot of every row (columns of ``codes``, predictors × rows) in one tree after at most
    ``depth`` more levels, from the root or from the slots ``node`` (not modified): rows stop
    at leaves (``feature < 0``)."""
    n = codes.shape[1]
    if node is None:
        node = np.zeros(n, np.intp)
        if depth == 0 or feature[0] < 0:
            return node
    flat = codes.reshape(-1)
    rows = np.arange(n)
    for _ in range(depth):
        f = feature[node]
        inner = f >= 0
        if not inner.any():
            break
        code = flat[np.where(inner, f, 0).astype(np.intp) * n + rows]
        node = np.where(inner, 2 * node + 1 + (code > bins[node]), node)
    return node
