"""The exact aggregates EDA adds noise to, computed in one or two streaming passes.

Nothing here leaves the runner: :mod:`._release` turns these aggregates into DP releases. Pass 1
collects, per column, what needs no bounds (category counts) or uses declared ones (histograms,
clipped sums), and for columns without declared bounds the grid counts and the first
``bounds_rows`` values that the private bounds are learnt on. Pass 2 bins those columns once
their private bounds are known.

Each pass is a map over blocks of rows (:func:`block_partials`, a module-level function so a
Dask-backed dataset's workers can run it) and a merge by addition in row order, so the result
does not depend on the blocking, nor on the backend.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jupyter_fed.privacy.bounds import N_BINS, magnitude_counts

__all__ = ["ColumnSpec", "Partial", "scan"]

BATCH_ROWS = 262_144


@dataclass(frozen=True)
class ColumnSpec:
    """What a pass computes for one column."""

    kind: str
    """``"categorical"`` or ``"numeric"``."""
    bounds: tuple[float, float] | None = None
    """Bin and clip to these (numeric); ``None``: collect what private bounds are learnt on."""
    bins: int = 20


@dataclass
class Partial:
    """Exact aggregates of one column over the rows seen so far (mergeable by :meth:`add`)."""

    values: dict[float, int] = field(default_factory=dict)
    """Categorical: rows per value."""
    grid: np.ndarray | None = None
    """Numeric without bounds: rows per power-of-two grid bin (first ``bounds_rows`` rows)."""
    prefix: list[np.ndarray] = field(default_factory=list)
    """Numeric without bounds: the first ``bounds_rows`` values, in row order."""
    hist: np.ndarray | None = None
    """Numeric with bounds: rows below, in each of the ``bins`` bins, and above."""
    sums: np.ndarray | None = None
    """Numeric with bounds: sum and sum of squares of the clipped values minus the centre."""

    def add(self, other: Partial) -> Partial:
        for v, n in other.values.items():
            self.values[v] = self.values.get(v, 0) + n
        for name in ("grid", "hist", "sums"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, theirs.copy() if mine is None else mine + theirs)
        self.prefix += other.prefix
        return self

    @property
    def prefix_values(self) -> np.ndarray:
        return np.concatenate(self.prefix) if self.prefix else np.zeros(0)


def _binned(x: np.ndarray, bounds: tuple[float, float], bins: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = bounds
    below, above = x < lo, x > hi
    inside = x[~(below | above)]
    idx = np.minimum(((inside - lo) * (bins / (hi - lo))).astype(np.int64), bins - 1)
    hist = np.concatenate([[below.sum()], np.bincount(idx, minlength=bins), [above.sum()]])
    u = np.clip(x, lo, hi) - (lo + hi) / 2.0
    return hist.astype(np.float64), np.array([u.sum(), (u * u).sum()])


def block_partials(block: np.ndarray, first_row: int, *, specs: list[ColumnSpec],
                   bounds_rows: int) -> tuple[int, list[Partial]]:
    """One block's partials, column by column (runs on Dask workers too: keep it module-level)."""
    take = max(0, bounds_rows - first_row)
    out = []
    for j, spec in enumerate(specs):
        x = block[:, j]
        part = Partial()
        if spec.kind == "categorical":
            values, counts = np.unique(x, return_counts=True)
            part.values = dict(zip(values.tolist(), counts.tolist(), strict=True))
        elif spec.bounds is None:
            if take:
                part.grid = magnitude_counts(x[:take]).astype(np.float64)
                part.prefix = [x[:take].copy()]
            else:
                part.grid = np.zeros(N_BINS)
        else:
            part.hist, part.sums = _binned(x, spec.bounds, spec.bins)
        out.append(part)
    return len(block), out


def _blocks(handle: Any, columns: list[str], fn: Any) -> Iterator[tuple[int, list[Partial]]]:
    """``fn`` over every block: streamed here, or on the Dask workers (the handle decides)."""
    return handle.map_blocks(columns, fn, BATCH_ROWS)


def scan(ctx: Any, handle: Any, columns: list[str], specs: list[ColumnSpec], bounds_rows: int,
         progress: tuple[float, float] = (0.0, 1.0)) -> dict[str, Partial]:
    """One pass over ``columns``; the merged partial of each column."""
    fn = functools.partial(block_partials, specs=specs, bounds_rows=bounds_rows)
    merged = {c: Partial() for c in columns}
    seen, total = 0, max(int(handle.info.num_rows), 1)
    start, span = progress
    for n, parts in _blocks(handle, columns, fn):
        seen += n
        ctx.progress(min(0.99, start + span * seen / total), "histograms")
        for c, part in zip(columns, parts, strict=True):
            merged[c].add(part)
    return merged
