"""Distributions of ``x op y`` derived from a noisy 2D histogram of ``(x, y)``.

No party ever holds both values of a row, so ``x + y`` cannot be binned row by row. Instead each
cell of the released 2D histogram is spread uniformly over its rectangle — ``SUB × SUB`` evenly
spaced points, each carrying ``count / SUB²`` — and ``op`` is applied to the points. The result
is exact when values are uniform within cells; otherwise a row's value of ``x op y`` is
misplaced by at most what ``op`` does across one cell: for ``+`` and ``-`` half the sum of the
two bin widths, for ``*`` about ``|x|·wy/2 + |y|·wx/2``, for ``/`` unbounded where a cell's
``y`` range includes 0 (those points are dropped, and the share dropped is reported).
Values clipped to the released bounds stay clipped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["OPS", "SUB", "derive"]

SUB = 8
OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def _points(lo: float, hi: float, bins: int) -> np.ndarray:
    width = (hi - lo) / bins
    offsets = (np.arange(SUB) + 0.5) / SUB
    return (lo + width * (np.arange(bins)[:, None] + offsets[None, :])).ravel()


def derive(counts: np.ndarray, x: tuple[float, float], y: tuple[float, float], op: str,
           bins: int = 20) -> tuple[np.ndarray, np.ndarray, float]:
    """(edges, counts, share of the mass dropped) of ``x op y``'s histogram."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 0.0)
    kx, ky = counts.shape
    xs, ys = _points(*x, kx), _points(*y, ky)
    weights = np.kron(counts, np.ones((SUB, SUB))) / SUB**2
    with np.errstate(divide="ignore", invalid="ignore"):
        values = OPS[op](xs[:, None], ys[None, :])
    ok = np.isfinite(values)
    if op == "/":  # cells whose y range straddles 0 make the ratio unbounded
        wy = (y[1] - y[0]) / ky
        ok &= np.abs(ys)[None, :] > wy / 2
    total = weights.sum()
    v, w = values[ok], weights[ok]
    dropped = float(1 - w.sum() / total) if total > 0 else 0.0
    if not w.sum():
        return np.linspace(0.0, 1.0, bins + 1), np.zeros(bins), dropped
    order = np.argsort(v)
    cum = np.cumsum(w[order]) / w.sum()
    lo = float(v[order][np.searchsorted(cum, 0.005)]) if op == "/" else float(v.min())
    hi = float(v[order][min(np.searchsorted(cum, 0.995), len(v) - 1)]) if op == "/" \
        else float(v.max())
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    hist, _ = np.histogram(np.clip(v, lo, hi), bins=edges, weights=w)
    return edges, hist, dropped
