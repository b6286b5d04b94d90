"""Per-row fields of a paired column, the noise of a pair's aggregates, and their release.

A paired column becomes, for every aligned row, a few integer *fields*: the one-hot indicator of
its group (numeric: ``bins`` equal bins over its released bounds, values outside clipped into the
end bins; categorical: its released values plus ``other``), and for numeric columns the clipped,
centred value in fixed point, ``round(u / half * 2**q)`` with ``u = clip(x, lo, hi) - centre``.
Rows with a missing value have all fields 0 (counted nowhere).

For a pair ``(x, y)`` the inner products of y's fields with x's fields over the aligned rows are

* ``counts[i, j]`` — rows in x's group ``i`` and y's group ``j`` (the 2D histogram);
* ``sum_x_by_y[j]`` — the sum of x's ``u`` over y's group ``j`` (x numeric);
* ``sum_y_by_x[i]`` — the sum of y's ``u`` over x's group ``i`` (y numeric);
* ``sum_xy`` — the sum of ``u_x * u_y`` (both numeric): correlation's cross-product.

Released with them: each group's size, the noisy cells summed over the other column before
small cells are suppressed (post-processing of the same release).

One person (row) moves ``counts`` by 1 in one cell, each sum vector by at most ``2**q`` in one
cell and ``sum_xy`` by ``2**(2q)``: the L1 sensitivities the discrete Laplace noise is scaled to,
with the pair's epsilon split evenly across the blocks present. Everything here is bounds,
values and group labels that were already released (public), or noisy aggregates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from jupyter_fed.privacy.mechanisms import integer_noise
from jupyter_fed.privacy.suppression import suppress_small

__all__ = ["FieldSpec", "block_noise", "fields_of", "quant_bits", "release_pair"]

MAX_QUANT_BITS = 12


def quant_bits(n: int, plain_bits: int = 45) -> int:
    """Fixed-point bits ``q`` so that ``n * 2**(2q)`` and its noise stay far inside the plaintext
    modulus (signed): at most 12 (a value's rounding error is then 1/8192 of its half-range)."""
    room = plain_bits - 4 - max(1, int(n)).bit_length()
    return max(1, min(MAX_QUANT_BITS, room // 2))


@dataclass(frozen=True)
class FieldSpec:
    """A paired column's public description: from its released bounds or categories."""

    client: str
    column: str
    kind: str
    """``numeric`` or ``categorical``."""
    lo: float = 0.0
    hi: float = 0.0
    bins: int = 0
    values: list[float] = field(default_factory=list)

    @property
    def groups(self) -> int:
        return self.bins if self.kind == "numeric" else len(self.values) + 1

    @property
    def width(self) -> int:
        return self.groups + (1 if self.kind == "numeric" else 0)

    @property
    def centre(self) -> float:
        return (self.lo + self.hi) / 2.0

    @property
    def half(self) -> float:
        return (self.hi - self.lo) / 2.0

    def labels(self) -> list[Any]:
        if self.kind == "numeric":
            e = np.linspace(self.lo, self.hi, self.bins + 1)
            return [f"[{e[i]:.4g}, {e[i + 1]:.4g})" for i in range(self.bins)]
        return [*self.values, "other"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldSpec:
        return cls(**{k: data[k] for k in ("client", "column", "kind", "lo", "hi", "bins",
                                            "values") if k in data})


def fields_of(x: np.ndarray, spec: FieldSpec, q: int) -> np.ndarray:
    """(rows, ``spec.width``) int64 fields of one column (see the module doc)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros((len(x), spec.width), dtype=np.int64)
    ok = np.isfinite(x)
    rows = np.flatnonzero(ok)
    if spec.kind == "numeric":
        span = spec.hi - spec.lo
        if span <= 0:
            return out
        v = np.clip(x[ok], spec.lo, spec.hi)
        idx = np.minimum(((v - spec.lo) * (spec.bins / span)).astype(np.int64), spec.bins - 1)
        out[rows, idx] = 1
        out[rows, spec.bins] = np.rint((v - spec.centre) / spec.half * 2**q).astype(np.int64)
    else:
        known = np.asarray(spec.values, dtype=np.float64)
        idx = np.full(len(rows), len(known), dtype=np.int64)
        if len(known):
            pos = np.searchsorted(known, x[ok])
            pos_c = np.minimum(pos, len(known) - 1)
            hit = known[pos_c] == x[ok]
            idx[hit] = pos_c[hit]
        out[rows, idx] = 1
    return out


def _blocks(x: FieldSpec, y: FieldSpec) -> list[tuple[slice, slice, int]]:
    """(y rows, x columns, sensitivity exponent of 2**q) of each block of a pair's aggregates."""
    kx, ky = x.groups, y.groups
    out = [(slice(0, ky), slice(0, kx), 0)]
    if x.kind == "numeric":
        out.append((slice(0, ky), slice(kx, kx + 1), 1))
    if y.kind == "numeric":
        out.append((slice(ky, ky + 1), slice(0, kx), 1))
    if x.kind == "numeric" and y.kind == "numeric":
        out.append((slice(ky, ky + 1), slice(kx, kx + 1), 2))
    return out


def block_noise(x: FieldSpec, y: FieldSpec, epsilon: float, q: int) -> np.ndarray:
    """(y.width × x.width) discrete Laplace noise for one pair's aggregates at ``epsilon``."""
    noise = np.zeros((y.width, x.width), dtype=np.int64)
    blocks = _blocks(x, y)
    for rows, cols, power in blocks:
        shape = noise[rows, cols].shape
        noise[rows, cols] = integer_noise(shape, 2 ** (q * power), epsilon / len(blocks))
    return noise


def release_pair(block: np.ndarray, x: FieldSpec, y: FieldSpec, epsilon: float, q: int,
                 k: int) -> dict[str, Any]:
    """What leaves for one pair: noisy aggregates in the columns' units; small cells suppressed
    (post-processing, as in individual mode)."""
    kx, ky = x.groups, y.groups
    scale = 2.0**q
    noisy = block[:ky, :kx].T.astype(np.float64)
    counts, hidden = suppress_small(noisy, k)
    # group sizes from the noisy cells before suppression (post-processing: free), then suppressed
    count_x, _ = suppress_small(noisy.sum(axis=1), k)
    count_y, _ = suppress_small(noisy.sum(axis=0), k)
    out: dict[str, Any] = {
        "x": x.as_dict(), "y": y.as_dict(), "counts": counts.tolist(), "suppressed": int(hidden),
        "count_x": count_x.tolist(), "count_y": count_y.tolist(),
        "epsilon": epsilon, "mechanism": "discrete_laplace",
        "sum_x_by_y": None, "sum_y_by_x": None, "sum_xy": None}
    if x.kind == "numeric":
        out["sum_x_by_y"] = (block[:ky, kx] * (x.half / scale)).tolist()
    if y.kind == "numeric":
        out["sum_y_by_x"] = (block[ky, :kx] * (y.half / scale)).tolist()
    if x.kind == "numeric" and y.kind == "numeric":
        out["sum_xy"] = float(block[ky, kx] * (x.half * y.half / scale / scale))
    if not math.isfinite(float(np.sum(counts))):
        raise ValueError("non-finite release")
    return out
