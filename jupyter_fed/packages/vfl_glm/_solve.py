"""The numerics of vfl_glm in numpy: the label party's subspace Newton solve, fixed point.

Why a subspace solve: a passive party's coefficients move only along the few directions it
offers each round (its preconditioned gradient and its last ``memory`` steps), and the label
party sees only those directions' *images* ``X_p D_p`` (one column per direction, one value per
linked row). With the images, its own columns and the intercept, the label party minimises the
deviance exactly over that whole subspace — a small GLM with an offset, solved by Newton's method
here, at the label party, with no further exchange. Its own block is thus solved outright every
round and each passive block moves by the best combination of its directions, which converges
like a preconditioned conjugate-gradient method on the full problem (the benchmark measures it).
"""

from __future__ import annotations

import numpy as np

from jupyter_fed.packages.glm import family as glm_family

__all__ = ["X_BITS", "residual_bits", "subspace_newton", "to_fixed", "x_scale_bits"]

X_BITS = 16
"""A passive party's fixed-point features are below ``2**X_BITS`` in absolute value."""
TOTAL_BITS = 44
"""Signed totals must stay below ``2**44`` (half the 45-bit BFV plaintext modulus)."""


def x_scale_bits(x: np.ndarray) -> int:
    """The fractional bits ``q`` with ``max|x| * 2**q < 2**X_BITS``."""
    top = float(np.abs(x).max(initial=0.0))
    return int(X_BITS - 1 - max(0, int(np.ceil(np.log2(top + 1e-12))) if top > 0 else 0))


def residual_bits(score: np.ndarray) -> int:
    """Fractional bits of the label party's fixed-point score so that every total of
    ``n`` products with features below ``2**X_BITS`` stays below ``2**TOTAL_BITS``."""
    n = max(len(score), 1)
    top = float(np.abs(score).max(initial=0.0))
    room = TOTAL_BITS - X_BITS - np.log2(n) - (np.log2(top) if top > 0 else 0.0) - 1.0
    return int(np.clip(np.floor(room), -60, 40))  # negative: the scores are rounded coarser


def to_fixed(x: np.ndarray, bits: int) -> np.ndarray:
    return np.rint(np.asarray(x, dtype=np.float64) * float(2 ** bits)).astype(np.int64)


def _dev(family: str, y: np.ndarray, eta: np.ndarray, link: str) -> float:
    mu = glm_family.inverse_link(link, eta)
    if family != "logistic" and not glm_family.valid_mean(family, mu):  # logistic: from η
        return float("inf")
    d = glm_family.deviance(family, y, mu, eta)
    return float(d.sum()) if np.isfinite(d).all() else float("inf")


def deviance(family: str, link: str, y: np.ndarray, eta: np.ndarray) -> float:
    return _dev(family, y, eta, link)


def subspace_newton(family: str, link: str, y: np.ndarray, eta0: np.ndarray, z: np.ndarray,
                    iterations: int = 100, tol: float = 1e-13) -> tuple[np.ndarray, float]:
    """``θ`` minimising the deviance of ``η0 + Z θ``, and that deviance.

    Newton's method damped à la Levenberg–Marquardt: columns of ``Z`` may be collinear (a party's
    past steps) and quasi-separated data make the Hessian nearly singular, so a step that does
    not lower the deviance is retried with a larger damping, which turns it towards the
    (always descending) scaled gradient.
    """
    theta = np.zeros(z.shape[1])
    best = _dev(family, y, eta0, link)
    if not np.isfinite(best):
        raise ValueError("the starting linear predictor gives means outside the family's range")
    for _ in range(iterations):
        eta = eta0 + z @ theta
        mu = glm_family.inverse_link(link, eta)
        score, weight = glm_family.score_weights(family, link, y, eta, mu)
        hess = (z * weight[:, None]).T @ z
        scale = np.sqrt(np.maximum(np.diag(hess), 1e-300))
        vals, vecs = np.linalg.eigh(hess / np.outer(scale, scale))
        proj = vecs.T @ ((z.T @ score) / scale)
        improved, damping = False, 1e-10
        for _ in range(14):
            step = vecs @ (proj / (np.maximum(vals, 0.0) + damping)) / scale
            for t in (1.0, 0.5, 0.25, 0.125):
                trial = theta + t * step
                dev = _dev(family, y, eta0 + z @ trial, link)
                if dev < best or (dev == best and t == 1.0):
                    improved = True
                    break
            if improved:
                break
            damping *= 10.0
        if not improved:
            break
        change = best - dev
        theta, best = trial, dev
        if change <= tol * max(abs(best), 1.0):
            break
    return theta, best
