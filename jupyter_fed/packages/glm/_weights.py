"""The two shapes a GLM's parameters travel in, and the one the kernel and metrics use.

Newton sessions send ``coef`` (float64, intercept first, raw feature scale). SGD sessions send a
one-layer network's weights (float32, as ffnet's): ``standardize.mean`` / ``standardize.scale``
buffers (the exact federated moments, fixed before round 1) and ``linear.weight`` / ``linear.bias``
on the standardised scale. :func:`raw_coefficients` folds the standardisation into the
coefficients, so prediction and metrics never need torch.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jupyter_fed.packages.glm import _family
from jupyter_fed.packages.glm.config import GLMConfig

__all__ = ["initial_sgd_weights", "raw_coefficients"]

MEAN, SCALE, WEIGHT, BIAS = "standardize.mean", "standardize.scale", "linear.weight", "linear.bias"


def raw_coefficients(tensors: Mapping[str, np.ndarray], width: int) -> np.ndarray:
    """``[intercept, coefficients…]`` on the raw features, from either shape of parameters.

    Raises ``ValueError`` for arrays of the wrong names or shapes.
    """
    if "coef" in tensors:
        coef = np.asarray(tensors["coef"], dtype=np.float64)
        if coef.shape != (width + 1,):
            raise ValueError(f"'coef' has shape {coef.shape}, expected ({width + 1},)")
        return coef
    w = np.asarray(tensors[WEIGHT], dtype=np.float64)
    b = np.asarray(tensors[BIAS], dtype=np.float64)
    mean = np.asarray(tensors.get(MEAN, np.zeros(width)), dtype=np.float64)
    scale = np.asarray(tensors.get(SCALE, np.ones(width)), dtype=np.float64)
    if w.shape != (1, width) or b.shape != (1,) or mean.shape != (width,) or scale.shape != (width,):
        raise ValueError("the network's weights do not match the number of predictors")
    slope = w[0] / scale
    return np.concatenate([[b[0] - slope @ mean], slope])


def initial_sgd_weights(cfg: GLMConfig, width: int, y_mean: float | None = None
                        ) -> dict[str, np.ndarray]:
    """Zero slopes and the null model's intercept (``g(ȳ)`` when the mean is known, else 0)."""
    bias = 0.0
    if y_mean is not None and np.isfinite(y_mean):
        try:
            bias = _family.link(cfg.ml_task.link, y_mean)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            bias = 0.0
    out = {WEIGHT: np.zeros((1, width), np.float32),
           BIAS: np.array([bias if np.isfinite(bias) else 0.0], np.float32)}
    if cfg.standardize:
        out = {MEAN: np.zeros(width, np.float32), SCALE: np.ones(width, np.float32), **out}
    return out
