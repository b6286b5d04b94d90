"""Exponential families and links in numpy: what a runner needs for one IRLS pass and metrics.

For a family with variance function ``V(μ)`` and link ``g`` (``η = g(μ)``), the score of the
log-likelihood is ``Σ xᵢ (yᵢ - μᵢ) μ'ᵢ / V(μᵢ)`` and the Fisher information ``Σ xᵢxᵢᵀ μ'ᵢ² / V(μᵢ)``
(``μ' = dμ/dη``), both up to the dispersion, which cancels in the Newton step. Sums over rows, so
silos add them up; the coordinator's Newton step is then statsmodels' IRLS step on the pooled rows.
"""

from __future__ import annotations

import numpy as np

from jupyter_fed.packages._metrics import binary_auc, r2

__all__ = ["check_target", "deviance", "inverse_link", "link", "metrics", "score_weights",
           "valid_mean", "variance"]


def inverse_link(name: str, eta: np.ndarray) -> np.ndarray:
    if name == "identity":
        return eta
    if name == "log":
        return np.exp(np.minimum(eta, 700.0))
    if name == "logit":
        return 0.5 * (1.0 + np.tanh(0.5 * eta))
    if name == "inverse":
        with np.errstate(divide="ignore"):
            return 1.0 / eta
    if name == "inverse_squared":
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 / np.sqrt(eta)
    if name == "sqrt":
        return eta * eta
    raise ValueError(f"unknown link {name!r}")


def link(name: str, mu: float) -> float:
    """``g(μ)``: the linear predictor of a constant mean (the null model's intercept)."""
    return float({"identity": lambda m: m, "log": np.log, "logit": lambda m: np.log(m / (1 - m)),
                  "inverse": lambda m: 1 / m, "inverse_squared": lambda m: 1 / m ** 2,
                  "sqrt": np.sqrt}[name](mu))


def _dmu(name: str, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
    if name == "identity":
        return np.ones_like(eta)
    if name == "log":
        return mu
    if name == "logit":
        return mu * (1.0 - mu)
    if name == "inverse":
        return -mu * mu
    if name == "inverse_squared":
        return -0.5 * mu ** 3
    return 2.0 * eta  # sqrt


def variance(family: str, mu: np.ndarray) -> np.ndarray:
    return {"normal": lambda m: np.ones_like(m), "logistic": lambda m: m * (1.0 - m),
            "poisson": lambda m: m, "gamma": lambda m: m * m,
            "inverse_gaussian": lambda m: m ** 3}[family](mu)


def valid_mean(family: str, mu: np.ndarray) -> bool:
    """Whether every mean lies where the family is defined (else the step must be shortened)."""
    if not np.isfinite(mu).all():
        return False
    if family == "logistic":
        return bool(((mu > 0) & (mu < 1)).all())
    return family == "normal" or bool((mu > 0).all())


def score_weights(family: str, link_name: str, y: np.ndarray, eta: np.ndarray, mu: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the score factor ``(y - μ) μ' / V`` and the IRLS weight ``μ'² / V``.

    Canonical links have ``μ' = V``: computed without the division, which underflows for the
    logit and log links far from the data.
    """
    if (family, link_name) in (("logistic", "logit"), ("poisson", "log"), ("normal", "identity")):
        return y - mu, variance(family, mu)
    d, v = _dmu(link_name, eta, mu), variance(family, mu)
    return (y - mu) * d / v, d * d / v


def deviance(family: str, y: np.ndarray, mu: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Unit deviances ``d(y, μ)`` (their sum is the deviance; half of it is ``-loglik`` + const)."""
    if family == "normal":
        return (y - mu) ** 2
    if family == "logistic":  # from η, exact where μ rounds to 0 or 1
        return 2.0 * (np.logaddexp(0.0, eta) - y * eta)
    with np.errstate(divide="ignore", invalid="ignore"):
        if family == "poisson":
            ylog = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
            return 2.0 * (ylog - (y - mu))
        if family == "gamma":
            return 2.0 * (-np.log(y / mu) + (y - mu) / mu)
        return (y - mu) ** 2 / (y * mu * mu)  # inverse_gaussian


def check_target(family: str, y: np.ndarray) -> str | None:
    """Why these target values do not fit the family (no value is named), or ``None``."""
    if family == "logistic" and np.any((y != 0.0) & (y != 1.0)):
        return "must hold 0/1 labels for the logistic family"
    if family == "poisson" and np.any(y < 0):
        return "must be non-negative for the poisson family"
    if family in ("gamma", "inverse_gaussian") and np.any(y <= 0):
        return f"must be positive for the {family} family"
    return None


CHUNK = 1 << 18
"""Rows whose unit deviances are computed at once (their temporaries stay small)."""


def _mean_deviance(family: str, y: np.ndarray, mu: np.ndarray, eta: np.ndarray) -> float:
    total = 0.0
    for s in range(0, len(y), CHUNK):
        total += float(deviance(family, y[s:s + CHUNK], mu[s:s + CHUNK], eta[s:s + CHUNK]).sum())
    return total / len(y)


def metrics(family: str, y: np.ndarray, mu: np.ndarray, eta: np.ndarray, prefix: str = "test_"
            ) -> dict[str, float]:
    """The reference's metrics: cross-entropy, accuracy and ROC AUC (logistic); MSE and R²
    (normal); mean unit deviance and R² (poisson, gamma, inverse Gaussian)."""
    n = len(y)
    out: dict[str, float] = {f"{prefix}num_examples": n}
    if n == 0:
        return out
    if family == "logistic":
        out[f"{prefix}loss"] = _mean_deviance(family, y, mu, eta) / 2.0
        out[f"{prefix}accuracy"] = float(((eta > 0) == (y > 0.5)).mean())
        out[f"{prefix}roc_auc"] = binary_auc(y > 0.5, eta)
        return out
    out[f"{prefix}loss"] = _mean_deviance(family, y, mu, eta)
    out[f"{prefix}r2"] = r2(y, mu)
    return out
