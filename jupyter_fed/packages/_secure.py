"""What a training package needs to run under ``secure_aggregation: true``.

Secure aggregation (``SessionIO.step(..., secure=SecureSum(...))``) gives a plan only the sum of
the clients' tensors. That is all FedAvg needs — ``Σ nᵢ·wᵢ / Σ nᵢ`` — and all the server
optimisers (FedAvgM, FedAdam, FedAdagrad, FedYogi) need, since they step on the averaged update.
It is not what robust rules need: a median, a trimmed mean, Krum or a per-client ``clip_norm``
look at every update, which is exactly what secure aggregation hides. So the combination is
refused when the session is created (:func:`secure_conflict`).

Exact moments (feature standardisation, GLM's null model) merge by Chan's formula, which is not
a sum; under secure aggregation the runners send raw sums instead (``count``, ``Σx``, ``Σx²``)
and :func:`moments_from_sums` recovers the pooled moments from their total.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import UpdateRejected
from jupyter_fed.packages._io import SecureSum

__all__ = ["CLIP", "PRECISION", "SUMS", "as_float64", "as_sums", "cast_back", "fedavg_sum",
           "mean_from_total", "moments_from_sums", "secure_conflict"]

CLIP, PRECISION = 1e15, 1e-10
"""The fixed point of exact sums (moments, Newton's gradients and Hessians, deviances): values
up to 1e15 kept to 1e-10, for up to ~4,000 clients (the 95-bit, two-word form)."""
FEDAVG_CLIP, FEDAVG_PRECISION = 1e9, 1e-8
"""The fixed point of FedAvg's weights × examples: up to 1e9 (a million rows times weights of
1,000) kept to 1e-8, so the mean is exact to ``1e-8 / examples`` — far below float32's
resolution — and the sum of up to 46 clients fits one 64-bit word (half the bytes of two)."""
SUMS = "sums"
"""The step parameter that asks a moments step for raw sums instead of centred moments."""
ROBUST = {"median": "Median", "trimmedmean": "TrimmedMean", "krum": "Krum",
          "multikrum": "MultiKrum"}


def secure_conflict(strategy: Mapping[str, Any]) -> str | None:
    """Why ``model_config.strategy`` cannot run under secure aggregation, or ``None``.

    Robust rules (``Median``, ``TrimmedMean``, ``Krum``, ``MultiKrum``, or any strategy with
    ``params.aggregation`` other than ``mean``) and ``params.clip_norm`` need each client's
    update; the FedAvg family works on the aggregate and is allowed.
    """
    name = str(strategy.get("name") or "FedAvg")
    params = strategy.get("params") or {}
    folded = "".join(ch for ch in name.lower() if ch not in "_- ")
    rule = "".join(ch for ch in str(params.get("aggregation", "mean")).lower() if ch not in "_- ")
    why = ("robust aggregation needs every client's update, which secure aggregation hides "
           "from the coordinator; use FedAvg, FedAvgM, FedAdam, FedAdagrad or FedYogi with the "
           "mean, or turn secure_aggregation off")
    if folded in ROBUST:
        return (f"model_config.secure_aggregation cannot be combined with model_config.strategy "
                f"{ROBUST[folded]!r}: {why}")
    if rule not in ("mean", "weightedmean"):
        return (f"model_config.secure_aggregation cannot be combined with model_config.strategy."
                f"params.aggregation {params.get('aggregation')!r}: {why}")
    if params.get("clip_norm") is not None:
        return ("model_config.secure_aggregation cannot be combined with model_config.strategy."
                "params.clip_norm: clipping each update needs each update's norm, which secure "
                "aggregation hides; clip at the clients instead (differential_privacy_params."
                "max_grad_norm) or turn secure_aggregation off")
    return None


def fedavg_sum(weights: Mapping[str, np.ndarray]) -> SecureSum:
    """The secure sum of FedAvg: every parameter × the client's examples, and the examples."""
    return SecureSum(tuple(weights), clip=FEDAVG_CLIP, precision=FEDAVG_PRECISION,
                     scale_by_examples=True)


def mean_from_total(total: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray],
                    clients: int) -> tuple[dict[str, np.ndarray], int]:
    """The example-weighted mean of ``clients``' weights, in float64, and the total example
    count, from :func:`fedavg_sum`'s total.

    Kept in float64 for the strategy (see :func:`cast_back`), and a parameter no client moved
    stays exactly where it was: the sum carries a quantisation error of up to ``clients *
    FEDAVG_PRECISION / 2``, and a server optimiser that divides by running moments (FedAdam, FedYogi)
    would blow a residue of 1e-13 up into a full step — on a frozen buffer or a dead unit whose
    update is exactly zero on the plain path. Any real change of a float32 weight moves the mean
    by at least a float32 step times the client's share of the examples, far above that floor.
    """
    examples = float(total["num_examples"][0])
    if examples <= 0:
        raise UpdateRejected("the secure sum holds no example", "check the clients' datasets")
    out = {}
    for key, ref in weights.items():
        g = np.asarray(ref, dtype=np.float64)
        mean = np.asarray(total[key], dtype=np.float64) / examples
        floor = clients * (FEDAVG_PRECISION / examples + 8 * np.finfo(np.float64).eps * np.abs(g))
        out[key] = np.where(np.abs(mean - g) <= floor, g, mean)
    return out, round(examples)


def as_float64(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}


def cast_back(values: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
              ) -> dict[str, np.ndarray]:
    """``values`` in the dtypes of ``reference`` (integer parameters rounded)."""
    out = {}
    for key, ref in reference.items():
        value = np.asarray(values[key])
        if np.issubdtype(ref.dtype, np.integer) or np.issubdtype(ref.dtype, np.bool_):
            value = np.rint(value)
        out[key] = value.astype(ref.dtype)
    return out


def as_sums(n: int, mean: np.ndarray, m2: np.ndarray, **extra: np.ndarray) -> dict[str, np.ndarray]:
    """A silo's moments as sums that add up across silos: ``count``, ``Σx``, ``Σx²`` (+ extra)."""
    mean, m2 = np.asarray(mean, np.float64), np.asarray(m2, np.float64)
    return {"count": np.array([float(n)]), "sum": n * mean, "sumsq": m2 + n * mean * mean,
            **extra}


def moments_from_sums(total: Mapping[str, np.ndarray], width: int
                      ) -> tuple[int, np.ndarray, np.ndarray]:
    """Pooled ``(n, mean, m2)`` from the total of every silo's :func:`as_sums`.

    ``Σx² - n·mean²`` loses the digits a column's mean shares with its spread; for the
    standardisation and starting values these moments serve, a few digits are plenty.
    """
    n = round(float(total["count"][0]))
    s, ss = np.asarray(total["sum"], np.float64), np.asarray(total["sumsq"], np.float64)
    if n <= 0 or s.shape != (width,) or ss.shape != (width,):
        raise UpdateRejected("the secure sum of the clients' moments is malformed")
    mean = s / n
    return n, mean, np.maximum(ss - n * mean * mean, 0.0)


def sums_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A moments step's parameters asking for raw sums."""
    return {**params, SUMS: True}


def moments_sum() -> SecureSum:
    """The secure sum of a moments step answered with :func:`as_sums` (``y_sum`` optional)."""
    return SecureSum(("count", "sum", "sumsq"), clip=CLIP, precision=PRECISION)
