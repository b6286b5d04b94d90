"""Shared aggregation maths: clipping, weighted mean, median, trimmed mean, (multi-)Krum.

Every strategy first answers the same question -- which client updates count, and how are they
combined -- and only then applies its own server optimiser. That first step lives here, once.

Everything works on *deltas* (client weights minus global weights) in float64 copies: clipping is a
statement about deltas, the server optimisers consume the aggregated delta as a pseudo-gradient, and
the caller's arrays are never written to. ``cast_like`` brings results back to the model's dtypes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from jupyter_fed.errors import UpdateRejected
from jupyter_fed.strategies._params import AggregationParams
from jupyter_fed.strategies.base import ClientUpdate, Weights
from jupyter_fed.strategies.validation import validate_update

Deltas = list[dict[str, np.ndarray]]


@dataclass(frozen=True)
class AggregationInfo:
    """What the last aggregation did, for the coordinator's round log.

    Attributes
    ----------
    rule
        The aggregation rule used.
    selected
        Clients whose update entered the result (all of them except for Krum and multi-Krum).
    clipped
        Clients whose update was scaled down to ``clip_norm``.
    norms
        L2 norm of each client's update before clipping.
    """

    rule: str
    selected: tuple[str, ...]
    clipped: tuple[str, ...] = ()
    norms: dict[str, float] = field(default_factory=dict)


def to_float64(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float64 copies of ``weights`` (always copies, so later maths cannot alias an input)."""
    return {k: np.array(v, dtype=np.float64) for k, v in weights.items()}


def cast_like(values: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> Weights:
    """Cast float64 ``values`` to the dtypes of ``reference``, rounding for integer parameters."""
    out: Weights = {}
    for key, ref in reference.items():
        dtype = np.asarray(ref).dtype
        value = values[key]
        if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_):
            value = np.rint(value)
        out[key] = np.asarray(value).astype(dtype)
    return out


def global_norm(delta: Mapping[str, np.ndarray]) -> float:
    """L2 norm of all arrays of ``delta`` taken together as one vector."""
    return float(np.sqrt(sum(float(np.vdot(d, d)) for d in delta.values())))


def clip_delta(delta: dict[str, np.ndarray], clip_norm: float | None
               ) -> tuple[dict[str, np.ndarray], float, bool]:
    """Scale ``delta`` down to L2 norm ``clip_norm`` if it is longer; return (delta, norm, clipped)."""
    norm = global_norm(delta)
    if clip_norm is None or norm <= clip_norm:
        return delta, norm, False
    scale = clip_norm / norm
    return {k: d * scale for k, d in delta.items()}, norm, True


def weighted_mean(deltas: Deltas, counts: Sequence[float]) -> dict[str, np.ndarray]:
    """Mean of ``deltas`` weighted by ``counts`` (example counts): FedAvg's rule.

    Computed as :class:`RunningMean` computes it (Σ count·delta, divided by Σ count at the end),
    so a mean taken update by update as answers arrive equals the one taken over a list."""
    if not deltas:
        _no_positive_count()
    sums = {k: np.zeros_like(v, dtype=np.float64) for k, v in deltas[0].items()}
    for c, d in zip(counts, deltas, strict=True):
        for key, acc in sums.items():
            acc += float(c) * d[key]
    return _divided(sums, float(sum(counts)))


def _divided(sums: dict[str, np.ndarray], total: float) -> dict[str, np.ndarray]:
    if total <= 0:
        _no_positive_count()
    return {k: v / total for k, v in sums.items()}


def _no_positive_count() -> None:
    raise UpdateRejected("no client update with a positive example count to aggregate",
                         "check that the clients' datasets are not empty")


class RunningMean:
    """FedAvg's aggregation one update at a time: clip the update's delta, add count × delta to
    running sums, keep nothing else of it.

    A coordinator aggregating a hundred clients then holds one model's worth of sums instead of
    a hundred updates, and does the work while slower clients are still training. Floating-point
    addition is not associative, so the caller adds updates in a fixed (client) order for
    reproducible results; the engine's ``fold`` does.
    """

    def __init__(self, global_weights: Mapping[str, np.ndarray], clip_norm: float | None,
                 check: bool = True) -> None:
        self.global64 = to_float64(global_weights)
        self.reference = dict(global_weights)
        self.clip_norm, self.check = clip_norm, check
        self.sums = {k: np.zeros_like(g) for k, g in self.global64.items()}
        self.total = 0.0
        self.ids: list[str] = []
        self.norms: dict[str, float] = {}
        self.clipped: list[str] = []

    def add(self, update: ClientUpdate) -> None:
        """Fold one update in (validated first unless the caller already did)."""
        if update.client_id in self.norms:
            raise UpdateRejected(f"client {update.client_id!r} sent more than one update for "
                                 "the same round", "keep one update per client")
        if self.check:
            validate_update(update, self.reference)
        delta = {k: np.asarray(update.weights[k], dtype=np.float64) - g
                 for k, g in self.global64.items()}
        delta, self.norms[update.client_id], was_clipped = clip_delta(delta, self.clip_norm)
        if was_clipped:
            self.clipped.append(update.client_id)
        count = float(update.num_examples)
        for key, acc in self.sums.items():
            acc += count * delta[key]
        self.total += count
        self.ids.append(update.client_id)

    def result(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], AggregationInfo]:
        """What :class:`AggregationRule` returns: global weights (float64), the mean delta, and
        what was done."""
        if not self.ids:
            raise UpdateRejected("no client update to aggregate",
                                 "wait until at least one client has sent an update")
        return (self.global64, _divided(self.sums, self.total),
                AggregationInfo("mean", tuple(self.ids), tuple(self.clipped), self.norms))


def coordinate_median(deltas: Deltas) -> dict[str, np.ndarray]:
    """Coordinate-wise median (unweighted: a client cannot buy influence with a large count)."""
    return {k: np.median(np.stack([d[k] for d in deltas]), axis=0) for k in deltas[0]}


def trimmed_mean(deltas: Deltas, trim_ratio: float) -> dict[str, np.ndarray]:
    """Per coordinate, drop the ``floor(trim_ratio * n)`` lowest and highest values, average the rest.

    Unweighted, like the median. With ``trim_ratio < 0.5`` at least one value always remains.
    """
    n = len(deltas)
    cut = int(np.floor(trim_ratio * n + 1e-9))
    out = {}
    for key in deltas[0]:
        stacked = np.sort(np.stack([d[key] for d in deltas]), axis=0)
        out[key] = stacked[cut:n - cut].mean(axis=0)
    return out


def krum_scores(deltas: Deltas, num_byzantine: int) -> np.ndarray:
    """Krum score of each update: sum of squared distances to its ``n - f - 2`` nearest others.

    Blanchard et al. (2017). An honest update sits in a cluster of honest ones and scores low; an
    outlier is far from everybody and scores high. Distances between deltas equal distances between
    weights, the global weights cancel.
    """
    n = len(deltas)
    flat = np.stack([np.concatenate([d[k].ravel() for k in d]) if d else np.zeros(0)
                     for d in deltas])
    dist = np.empty((n, n))
    for i in range(n):
        diff = flat - flat[i]
        dist[i] = np.einsum("ij,ij->i", diff, diff)
    closest = n - num_byzantine - 2
    return np.array([np.sort(np.delete(dist[i], i))[:closest].sum() for i in range(n)])


def krum_select(deltas: Deltas, num_byzantine: int, num_selected: int,
                client_ids: Sequence[str]) -> list[int]:
    """Indices of the ``num_selected`` best-scored updates (lowest score first, ties by order).

    Raises
    ------
    UpdateRejected
        If there are not more than ``2f + 2`` updates, the bound under which Krum tolerates ``f``
        faulty clients, or if ``num_selected`` exceeds ``n - f``.
    """
    n, f = len(deltas), num_byzantine
    if n <= 2 * f + 2:
        raise UpdateRejected(
            f"Krum with num_byzantine={f} needs more than 2*{f}+2 = {2 * f + 2} client updates, "
            f"got {n} ({', '.join(client_ids)})",
            "lower strategy.params.num_byzantine, or run the round with more clients")
    if num_selected > n - f:
        raise UpdateRejected(
            f"multi-Krum cannot select num_selected={num_selected} of {n} updates while "
            f"tolerating num_byzantine={f}: at most n - f = {n - f}",
            "lower strategy.params.num_selected, or run the round with more clients")
    order = np.argsort(krum_scores(deltas, f), kind="stable")
    return [int(i) for i in order[:num_selected]]


@dataclass(frozen=True)
class AggregationRule:
    """A configured aggregation rule: clip each update, then combine them.

    Built from ``AggregationParams``; calling it returns the float64 global weights, the aggregated
    float64 delta (the pseudo-gradient) and an ``AggregationInfo``.
    """

    aggregation: str = "mean"
    trim_ratio: float = 0.2
    num_byzantine: int = 0
    num_selected: int | None = None
    clip_norm: float | None = None

    @classmethod
    def from_params(cls, params: AggregationParams) -> AggregationRule:
        """The rule described by validated strategy parameters."""
        return cls(params.aggregation, params.trim_ratio, params.num_byzantine,
                   params.num_selected, params.clip_norm)

    def running(self, global_weights: Mapping[str, np.ndarray], check: bool = True
                ) -> RunningMean | None:
        """An accumulator taking updates one at a time, where the rule allows it (the mean);
        None for rules that need every update at once (median, trimmed mean, Krum)."""
        if self.aggregation != "mean":
            return None
        return RunningMean(global_weights, self.clip_norm, check)

    def __call__(self, global_weights: Mapping[str, np.ndarray], updates: Sequence[ClientUpdate]
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], AggregationInfo]:
        if not updates:
            raise UpdateRejected("no client update to aggregate",
                                 "wait until at least one client has sent an update")
        ids = [u.client_id for u in updates]
        dupes = sorted({c for c in ids if ids.count(c) > 1})
        if dupes:
            raise UpdateRejected(f"client(s) {', '.join(map(repr, dupes))} sent more than one "
                                 "update for the same round", "keep one update per client")
        if self.aggregation == "mean":  # one code path with the engine's update-by-update fold
            acc = RunningMean(global_weights, self.clip_norm)
            for update in updates:
                acc.add(update)
            return acc.result()
        for update in updates:
            validate_update(update, global_weights)
        global64 = to_float64(global_weights)
        deltas: Deltas = []
        norms: dict[str, float] = {}
        clipped: list[str] = []
        for update in updates:
            delta = {k: np.asarray(update.weights[k], dtype=np.float64) - g
                     for k, g in global64.items()}
            delta, norms[update.client_id], was_clipped = clip_delta(delta, self.clip_norm)
            deltas.append(delta)
            if was_clipped:
                clipped.append(update.client_id)
        counts = [float(u.num_examples) for u in updates]
        selected = ids
        if self.aggregation == "mean":
            agg = weighted_mean(deltas, counts)
        elif self.aggregation == "median":
            agg = coordinate_median(deltas)
        elif self.aggregation == "trimmed_mean":
            agg = trimmed_mean(deltas, self.trim_ratio)
        elif self.aggregation in ("krum", "multi_krum"):
            m = 1 if self.aggregation == "krum" else (
                self.num_selected or len(updates) - self.num_byzantine)
            best = krum_select(deltas, self.num_byzantine, m, ids)
            agg = weighted_mean([deltas[i] for i in best], [counts[i] for i in best])
            selected = [ids[i] for i in best]
        else:  # pragma: no cover - AggregationParams only lets known rules through
            raise ValueError(f"unknown aggregation rule {self.aggregation!r}")
        info = AggregationInfo(self.aggregation, tuple(selected), tuple(clipped), norms)
        return global64, agg, info
