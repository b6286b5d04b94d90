"""Model metrics in numpy, so a runner's step needs neither scikit-learn nor scipy.

scikit-learn's metrics module takes longer to import (≈1.2 s) than torch itself; these few lines
give the same numbers (checked against scikit-learn in the unit tests).
"""

from __future__ import annotations

import numpy as np


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present (undefined, not faked)."""
    labels = np.asarray(labels).astype(bool)
    pos = int(labels.sum())
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    return _mann_whitney(np.asarray(scores, dtype=np.float64), labels) / (pos * neg)


def _mann_whitney(x: np.ndarray, labels: np.ndarray) -> float:
    """How many (marked, unmarked) pairs the marked row scores higher in, a tie counting half:
    each group sorted once and the marked rows' places found among the unmarked by binary
    search. Exact in integers, and without the argsort of every row that ranking them needs (a
    gbm session measures its model like this once an iteration, on the critical path); about 24
    bytes a row beside ``x``."""
    unmarked = x[~labels]
    unmarked.sort()
    marked = x[labels]
    marked.sort()  # sorted queries: the searches walk the array forwards
    below = np.searchsorted(unmarked, marked, "left")
    ties = np.searchsorted(unmarked, marked, "right")
    ties -= below
    return float(int(below.sum()) + 0.5 * int(ties.sum()))


def roc_auc(labels: np.ndarray, prob: np.ndarray) -> float:
    """Binary AUC from class-1 probabilities, or one-vs-rest macro AUC over the classes present."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "iu" and len(labels) and labels.min() >= 0:
        present = np.flatnonzero(np.bincount(labels))  # no sort: class codes are small
    else:
        present = np.unique(labels)
    if len(present) < 2:
        return float("nan")
    if prob.shape[1] == 2:
        return binary_auc(labels == 1, prob[:, 1])
    p = prob[:, present] / prob[:, present].sum(1, keepdims=True)
    return float(np.mean([binary_auc(labels == c, p[:, j]) for j, c in enumerate(present)]))


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - pred) ** 2).sum())
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


class RowArrays:
    """Per-row values (one 1-d array per name) filled block by block into arrays made once for
    the expected rows, so collecting them never holds a list of blocks and their concatenation
    at the same time; more rows than expected still fit (the arrays grow)."""

    def __init__(self, rows: int, **dtypes: type | np.dtype) -> None:
        self._arrays = {name: np.empty(rows, dtype) for name, dtype in dtypes.items()}
        self.n = 0

    def add(self, **values: np.ndarray) -> None:
        m = len(next(iter(values.values())))
        end = self.n + m
        for name, v in values.items():
            a = self._arrays[name]
            if end > len(a):
                a = self._arrays[name] = np.resize(a, max(end, 2 * len(a)))
            a[self.n:end] = v
        self.n = end

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name][:self.n]
