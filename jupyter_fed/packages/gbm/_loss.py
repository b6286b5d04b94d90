"""scikit-learn's losses for histogram gradient boosting, in numpy, and the models' metrics.

- regression: half squared error; gradient ``raw - y``, hessian 1 (constant: histograms then use
  row counts as hessians, as scikit-learn does); baseline the mean target.
- binary classification: half binomial deviance on one raw score; gradient ``p - y``, hessian
  ``p (1 - p)``; baseline ``logit(mean y)``.
- multiclass: half multinomial deviance, one raw score (and one tree per iteration) per class;
  gradient ``p_k - [y = k]``, hessian ``p_k (1 - p_k)``; baseline the symmetric multinomial
  logit of the class shares, ``log p_k - mean_j log p_j``.

Metrics follow the reference's table: loss (cross-entropy, or the mean squared error), ROC AUC and
accuracy for classification, R² for regression.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages._metrics import r2, roc_auc

__all__ = ["baseline", "gradients", "metrics", "per_row_loss", "probabilities", "trees_per_iteration"]

EPS = np.finfo(np.float64).eps


def trees_per_iteration(classification: bool, n_classes: int) -> int:
    return n_classes if classification and n_classes > 2 else 1


def baseline(classification: bool, n_classes: int, target: np.ndarray) -> np.ndarray:
    """The intercept-only raw prediction from the merged target summary: class counts, or
    ``[count, sum of y]`` for regression."""
    if not classification:
        count, total = float(target[0]), float(target[1])
        return np.array([total / count if count > 0 else 0.0])
    share = np.clip(target[:n_classes] / max(float(target[:n_classes].sum()), 1.0), EPS, 1 - EPS)
    if n_classes == 2:
        return np.array([np.log(share[1] / (1 - share[1]))])
    logs = np.log(share)
    return logs - logs.mean()


def _softmax(raw: np.ndarray) -> np.ndarray:
    z = raw - raw.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def probabilities(raw: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities (rows × classes) from raw scores."""
    if n_classes == 2:
        p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
        return np.column_stack([1.0 - p, p])
    return _softmax(raw)


def gradients(raw: np.ndarray, y: np.ndarray, classification: bool, n_classes: int
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradient and hessian (rows × K) of the loss at ``raw``; hessian ``None`` when constant."""
    if not classification:
        return raw - y[:, None], None
    if n_classes == 2:
        p = 1.0 / (1.0 + np.exp(-raw))
        return p - y[:, None], p * (1.0 - p)
    p = _softmax(raw)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y.astype(np.intp)] = 1.0
    return p - onehot, p * (1.0 - p)


def per_row_loss(raw: np.ndarray, y: np.ndarray, classification: bool, n_classes: int
                 ) -> np.ndarray:
    """Cross-entropy (natural log) or squared error of every row."""
    if not classification:
        return (raw[:, 0] - y) ** 2
    if n_classes == 2:
        return np.logaddexp(0.0, raw[:, 0]) - y * raw[:, 0]
    top = raw.max(axis=1)
    lse = top + np.log(np.exp(raw - top[:, None]).sum(axis=1))
    return lse - raw[np.arange(len(y)), y.astype(np.intp)]


def metrics(raw: np.ndarray, y: np.ndarray, classification: bool, n_classes: int,
            prefix: str = "test_") -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's metrics on these rows, and (classification) how many classes it predicts."""
    n = len(y)
    out: dict[str, Any] = {f"{prefix}num_examples": n}
    if n == 0:
        return out, {}
    out[f"{prefix}loss"] = float(per_row_loss(raw, y, classification, n_classes).mean())
    if not classification:
        out[f"{prefix}r2"] = r2(y, raw[:, 0])
        return out, {}
    prob = probabilities(raw, n_classes)
    predicted = prob.argmax(axis=1)
    out[f"{prefix}accuracy"] = float((predicted == y).mean())
    out[f"{prefix}roc_auc"] = roc_auc(y.astype(np.int64), prob)
    return out, {"predicted_classes": int(np.count_nonzero(np.bincount(predicted))),
                 "test_rows": n}
