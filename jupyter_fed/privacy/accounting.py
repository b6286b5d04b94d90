"""What a release costs in (epsilon, delta), and the DP-SGD accountant.

The runner debits a step's :class:`PrivacyCost` before any row is read; the step must then keep
within it. Rules that no request can bend:

* delta per step is capped by the dataset's policy, by default ``1/n²`` for ``n`` rows, and
  never above :data:`MAX_DELTA` (``1e-5``): a delta near 1 makes any epsilon meaningless (a
  request with epsilon 1e-9 and delta 0.99 used to train with almost no noise);
* DP-SGD is accounted with opacus' RDP accountant (Mironov 2017; conversion of Balle et al. 2020)
  at the capped delta, for the number of noisy steps the configuration implies; the noise
  multiplier is the smallest one for which that accountant stays within the per-round epsilon,
  and the ledger is charged that epsilon — never less than the accountant reports.

opacus' RDP analysis is a numpy/scipy module inside a package whose ``__init__`` imports torch.
Costing runs on the runner's event loop, where a torch import would stall every request, so the
analysis module is loaded on its own (:func:`_rdp`), without executing opacus' ``__init__``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MAX_DELTA", "ORDERS", "DatasetFacts", "PrivacyCost", "delta_cap", "dp_sgd_epsilon",
           "dp_sgd_noise_multiplier", "dp_sgd_schedule"]

MAX_DELTA = 1e-5
"""No step may spend a larger delta, whatever the policy says."""

ORDERS: tuple[float, ...] = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))
"""The RDP orders of opacus' ``RDPAccountant`` (its ``DEFAULT_ALPHAS``), so the epsilon computed
here before training equals what the training's own accountant reports after it."""

MIN_NOISE_MULTIPLIER = 0.05
"""Smallest noise multiplier searched: below it the accountant's epsilon is meaningless anyway."""

MAX_NOISE_MULTIPLIER = 1e4
"""Above this the update is pure noise: refuse rather than pretend to train."""


@dataclass(frozen=True)
class DatasetFacts:
    """What a package may know about a dataset when it prices a step: public facts only."""

    num_rows: int
    """Registered row count (public in the catalog)."""
    delta_cap: float
    """Largest delta the policy lets one step spend on it."""
    exact_only: bool = False
    """The policy refuses queries that would need differential privacy (row filters)."""


@dataclass(frozen=True)
class PrivacyCost:
    """What one step spends on one dataset role, and what else it does with the rows.

    Attributes
    ----------
    epsilon, delta
        The differential-privacy cost the runner debits before the step runs.
    evaluation
        The step measures a model on these rows (loss, accuracy): a query the runner limits to
        one exact answer per training round and otherwise charges and answers with noise.
    trains
        The step is a training round of its session (it earns that round's evaluation).
    reads
        The step reads these rows at all (``False``: e.g. a DP session's final evaluation,
        which measures nothing on its training rows, so ``require_dp`` has nothing to refuse).
    party_model
        The measured model lives (partly) at this party between steps, not only in the
        request's arrays (the vertical packages): two requests with the same arrays may
        measure different models, so the runner counts each such evaluation as a new model.
    """

    epsilon: float
    delta: float = 0.0
    evaluation: bool = False
    trains: bool = False
    reads: bool = True
    party_model: bool = False

    def __post_init__(self) -> None:
        for name in ("epsilon", "delta"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"privacy cost {name} must be a finite number >= 0")
        if self.delta >= 1:
            raise ValueError("privacy cost delta must be below 1")

    @property
    def spends(self) -> bool:
        return self.epsilon > 0 or self.delta > 0

    def __add__(self, other: PrivacyCost) -> PrivacyCost:
        return PrivacyCost(self.epsilon + other.epsilon, self.delta + other.delta,
                           self.evaluation or other.evaluation, self.trains or other.trains,
                           self.reads or other.reads, self.party_model or other.party_model)

    def as_dict(self) -> dict[str, float]:
        return {"epsilon": self.epsilon, "delta": self.delta}

    @classmethod
    def of(cls, value: Any) -> PrivacyCost:
        """A cost from a package's declaration: a number (epsilon only), a dict or a cost."""
        if isinstance(value, PrivacyCost):
            return value
        if isinstance(value, dict):
            return cls(float(value.get("epsilon", 0.0)), float(value.get("delta", 0.0)))
        return cls(float(value), 0.0)


def delta_cap(num_rows: int, policy_delta: float | None = None) -> float:
    """Largest delta one step may spend on a dataset of ``num_rows`` rows.

    ``policy_delta`` is the custodian's per-step cap; by default ``1/n²``: a delta of about
    ``1/n`` would allow releasing one row in the clear. Never above :data:`MAX_DELTA`.
    """
    n = max(int(num_rows), 1)
    cap = policy_delta if policy_delta is not None else 1.0 / (n * n)
    return float(min(cap, MAX_DELTA))


@functools.lru_cache(maxsize=1)
def _rdp() -> Any:
    """opacus' ``accountants/analysis/rdp.py``, loaded without importing opacus (or torch)."""
    spec = importlib.util.find_spec("opacus")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("opacus is required for DP-SGD accounting")
    path = Path(next(iter(spec.submodule_search_locations))) / "accountants" / "analysis" / "rdp.py"
    mod_spec = importlib.util.spec_from_file_location("jupyter_fed_opacus_rdp", path)
    if mod_spec is None or mod_spec.loader is None:
        raise ImportError(f"cannot load opacus' RDP analysis from {path}")
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    import warnings

    # "optimal order is the largest alpha": the bound is still valid, only possibly looser. Set
    # once, process-wide: ``warnings.catch_warnings`` is not safe in the runner's worker threads.
    warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
    return module


def dp_sgd_schedule(num_rows: int, batch_size: int, epochs: int) -> tuple[float, int]:
    """``(sample_rate, steps)`` of one DP-SGD round as ffnet trains it: Poisson batches with
    expected size ``batch_size``, ``ceil(n / batch_size)`` steps per epoch."""
    if num_rows < 1 or batch_size < 1 or epochs < 1:
        raise ValueError("DP-SGD needs at least one row, one example per batch and one epoch")
    per_epoch = max(1, -(-int(num_rows) // int(batch_size)))
    return 1.0 / per_epoch, per_epoch * int(epochs)


def dp_sgd_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` sampled-Gaussian steps by opacus' RDP accountant at ``delta``."""
    if not 0 < sample_rate <= 1 or steps < 1 or not 0 < delta < 1 or noise_multiplier <= 0:
        raise ValueError("invalid DP-SGD parameters")
    rdp = _rdp()
    curve = rdp.compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=int(steps),
                            orders=list(ORDERS))
    eps, _ = rdp.get_privacy_spent(orders=list(ORDERS), rdp=curve, delta=delta)
    return max(float(eps), 0.0)


def dp_sgd_noise_multiplier(epsilon: float, sample_rate: float, steps: int, delta: float) -> float:
    """Smallest noise multiplier for which :func:`dp_sgd_epsilon` is at most ``epsilon``.

    Raises ``ValueError`` when even :data:`MAX_NOISE_MULTIPLIER` does not reach ``epsilon``.
    """
    if dp_sgd_epsilon(MAX_NOISE_MULTIPLIER, sample_rate, steps, delta) > epsilon:
        raise ValueError("epsilon is out of reach")
    lo, hi = MIN_NOISE_MULTIPLIER, MAX_NOISE_MULTIPLIER
    if dp_sgd_epsilon(lo, sample_rate, steps, delta) <= epsilon:
        return lo
    for _ in range(80):  # bisection on a log scale; epsilon decreases as the noise grows
        mid = math.sqrt(lo * hi)
        if dp_sgd_epsilon(mid, sample_rate, steps, delta) <= epsilon:
            hi = mid
        else:
            lo = mid
        if hi / lo < 1 + 1e-6:
            break
    return hi
