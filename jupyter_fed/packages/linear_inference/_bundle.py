"""The maths of a bundle of regressions that share all but one predictor, in batched numpy.

Model ``j`` regresses the target on ``Z = [1, shared]`` (``q`` columns) and chunked column ``c_j``.
Its Gram matrix is ``[[ZᵀWZ, ZᵀWc_j], [c_jᵀWZ, c_jᵀWc_j]]`` (``W`` = identity for OLS, the IRLS
weights for the logit): the ``q × q`` corner differs between models only through ``W``, and the rest
are columns of ``Zᵀ(W∘C)`` and ``Σ W∘C²``. So one pass over a block of rows serves every model
with a handful of matrix products — thousands of chunked predictors cost one pass per Newton
iteration, not one pass (or one session) each. Runners sum these partials over their rows; the
coordinator adds them up and solves ``m`` small ``p × p`` systems at once (``p = q + 1``).

Everything is float64 and order-independent up to rounding, so the merged result is the pooled
fit's (statsmodels ``OLS`` / ``Logit`` on the concatenated rows) to ~1e-12.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["LINEAR_KEYS", "LOGIT_KEYS", "Solved", "assemble", "linear_partials", "logit_partials",
           "merge", "solve"]

Arrays = dict[str, np.ndarray]

LINEAR_KEYS = ("zz", "zy", "yy", "zc", "cy", "cc")
LOGIT_KEYS = ("hzz", "hzc", "hcc", "gz", "gc", "loglik", "correct")


def _pairs(q: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(q)


def linear_partials(y: np.ndarray, z: np.ndarray, c: np.ndarray) -> Arrays:
    """OLS sufficient statistics of one block: ``ZᵀZ, Zᵀy, yᵀy, ZᵀC, Cᵀy, Σc²`` (``Σy`` is
    ``Zᵀy[0]``: ``Z`` starts with the intercept's column of ones).

    They do not depend on the coefficients, so one pass fits every model exactly.
    """
    return {"zz": z.T @ z, "zy": z.T @ y, "yy": np.array([y @ y]), "zc": c.T @ z,
            "cy": c.T @ y, "cc": np.einsum("nm,nm->m", c, c)}


def linear_predictor(z: np.ndarray, c: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``η`` of every model for every row: ``(n, m)`` = ``Z β_Z,jᵀ + c_j β_c,j``."""
    q = z.shape[1]
    eta = z @ coef[:, :q].T
    eta += c * coef[:, q]
    return eta


SPREAD = "spread"
"""Per model: Σw, Σw², Σ|y-μ|, Σ(y-μ)² of a block — what the dominance rule needs; the runner
checks and drops it before anything leaves."""


def logit_partials(y: np.ndarray, z: np.ndarray, c: np.ndarray, coef: np.ndarray) -> Arrays:
    """Gradient, Fisher information and log-likelihood of every logit model on one block.

    ``coef`` is ``(m, q + 1)``: row ``j`` holds model ``j``'s intercept, shared and chunked
    coefficients. Returns the information blocks (``hzz`` as ``(m, q, q)``), the score blocks, the
    log-likelihood per model and how many rows each model classifies correctly.
    """
    q = z.shape[1]
    eta = linear_predictor(z, c, coef)
    # One exp for everything: with e = exp(-|η|), μ = 1/(1+e) or e/(1+e) by the sign of η,
    # μ(1-μ) = e/(1+e)², and log(1+exp(η)) = max(η, 0) + log1p(e). In place: the (rows, models)
    # arrays dominate the cost of a Newton iteration.
    e = np.abs(eta)
    np.negative(e, out=e)
    np.exp(e, out=e)
    inv = 1.0 + e
    np.reciprocal(inv, out=inv)
    w = e * inv
    r = np.where(eta >= 0, inv, w)  # μ
    np.multiply(w, inv, out=w)  # μ(1 - μ)
    np.subtract(y[:, None], r, out=r)  # y - μ
    np.log1p(e, out=e)
    softplus = np.maximum(eta, 0.0, out=inv)
    softplus += e
    a, b = _pairs(q)
    packed = w.T @ (z[:, a] * z[:, b])  # (m, pairs): every ZᵀW_jZ in one product
    hzz = np.empty((coef.shape[0], q, q))
    hzz[:, a, b] = packed
    hzz[:, b, a] = packed
    # how many rows each model's weights and scores are worth (the runner's dominance rule;
    # kept at the runner, never released)
    spread = np.stack([w.sum(axis=0), np.einsum("nm,nm->m", w, w), np.abs(r).sum(axis=0),
                       np.einsum("nm,nm->m", r, r)])
    loglik = y @ eta - softplus.sum(axis=0)
    sign = np.sign(eta, out=eta)  # accuracy at the 0.5 threshold (a tie counts half)
    correct = 0.5 * (len(y) + (2.0 * y - 1.0) @ sign)
    wc = np.multiply(w, c, out=w)
    return {"hzz": hzz, "hzc": wc.T @ z, "hcc": np.einsum("nm,nm->m", wc, c), "gz": r.T @ z,
            "gc": np.einsum("nm,nm->m", r, c), "loglik": loglik, "correct": correct,
            SPREAD: spread}


def merge(parts: Iterable[Mapping[str, np.ndarray]]) -> Arrays:
    """Sum partials key by key (blocks of one silo, or silos of a session)."""
    total: Arrays = {}
    for part in parts:
        for k, v in part.items():
            total[k] = total[k] + v if k in total else np.array(v, dtype=np.float64)
    return total


def assemble(s: Mapping[str, np.ndarray], logistic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every model's ``p × p`` matrix (``XᵀX`` or the Fisher information) and right-hand side
    (``Xᵀy`` or the score), stacked: ``(m, p, p)`` and ``(m, p)``."""
    if logistic:
        hzz, hzc, hcc, gz, gc = s["hzz"], s["hzc"], s["hcc"], s["gz"], s["gc"]
        m, q = hzc.shape
        g = np.empty((m, q + 1, q + 1))
        g[:, :q, :q] = hzz
    else:
        zz, hzc, hcc, gz, gc = s["zz"], s["zc"], s["cc"], s["zy"], s["cy"]
        m, q = hzc.shape
        g = np.empty((m, q + 1, q + 1))
        g[:, :q, :q] = zz
        gz = np.broadcast_to(gz, (m, q))
    g[:, :q, q] = hzc
    g[:, q, :q] = hzc
    g[:, q, q] = hcc
    return g, np.concatenate([gz, gc[:, None]], axis=1)


@dataclass
class Solved:
    """Solutions of the stacked systems; models whose matrix is singular are NaN and listed."""

    x: np.ndarray
    inverse: np.ndarray
    singular: np.ndarray


def solve(g: np.ndarray, rhs: np.ndarray) -> Solved:
    """``g⁻¹ rhs`` and ``g⁻¹`` for every model at once (a singular model is NaN, not an error)."""
    singular = np.zeros(len(g), dtype=bool)
    try:
        inverse = np.linalg.inv(g)
    except np.linalg.LinAlgError:
        inverse = np.full_like(g, np.nan)
        for j in range(len(g)):
            try:
                inverse[j] = np.linalg.inv(g[j])
            except np.linalg.LinAlgError:
                singular[j] = True
    # a numerically singular matrix inverts to garbage rather than failing: catch it by its
    # condition number (collinear predictors, a chunked column constant across the federation)
    with np.errstate(invalid="ignore", over="ignore"):
        cond = np.linalg.cond(g)
    singular |= ~np.isfinite(cond) | (cond > 1e14)
    inverse[singular] = np.nan
    x = np.linalg.solve(np.where(singular[:, None, None], np.eye(g.shape[1]), g), rhs[..., None])[..., 0]
    x[singular] = np.nan
    return Solved(x, inverse, singular)
