"""Model metrics in numpy, so a runner's step needs neither scikit-learn nor scipy.

scikit-learn's metrics module takes longer to import (≈1.2 s) than torch itself; these few lines
give the same numbers (checked against scikit-learn in the unit tests).
"""

from __future__ import annotations

import numpy as np


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (as the Mann-Whitney statistic needs); one
    sort (each evaluation of a model ranks all its test rows)."""
    n = len(x)
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    first = np.empty(n, dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, n))
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present (undefined, not faked)."""
    labels = np.asarray(labels).astype(bool)
    pos = int(labels.sum())
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


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
