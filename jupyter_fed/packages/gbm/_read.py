"""gbm's rows in bounded memory: sketches, bin codes and targets from one pass over blocks.

gbm never needs its rows as floats after binning them: a tree routes a row by its bin codes, and
a histogram sums gradients by bin. So its steps read the dataset block by block
(``DatasetHandle.batches`` in file order: from the worker's cache when the rows fit, else
streamed from the file or Dask) and keep, per row, only

- the bin code of every predictor (uint8, predictors × rows: one byte a cell, against eight for
  the float64 rows),
- the target (float64), and what the iterations add: raw predictions and gradients (float64 and
  float32 per tree), the node each row reached (``_memo``).

A step's memory is thus ``rows × (predictors + about 40 bytes per tree of an iteration)`` plus one
block, not ``rows × predictors × 8``: a silo whose float rows exceed a worker's memory trains if
its codes fit. The sketches of round 0 are merged block by block — DDSketch buckets add up — and
coarsened once at the end, so they are exactly those of the whole column at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from jupyter_fed.packages.base import DatasetHandle
from jupyter_fed.packages.gbm import _sketch

__all__ = ["READ_ROWS", "binned", "sketches"]

READ_ROWS = 65_536
"""Rows per block read."""

Check = Callable[[np.ndarray], None]
"""Checks one block's target values (raises ``ConfigError`` naming the dataset)."""


def _merge(a: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
           b: tuple[np.ndarray, np.ndarray, np.ndarray]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if a is None:
        return b
    return _sketch._merge_sorted(*(np.concatenate([x, y]) for x, y in zip(a, b, strict=True)))


def sketches(handle: DatasetHandle, predictors: Sequence[str], target: str, alpha: float,
             k: int, check: Check, classes: bool
             ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray, int, float]:
    """Every predictor's sketch coarsened to ``k`` (as ``_sketch.column_sketch`` on the whole
    column), the target's class counts (``classes``: ``check`` has made sure of labels) and its
    row count and sum — one pass over the rows."""
    merged: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(predictors)
    counts = np.zeros(0)
    n, total = 0, 0.0
    for block in handle.batches([*predictors, target], READ_ROWS, dtype=np.float64):
        y = block[:, -1]
        check(y)
        n, total = n + len(y), total + float(y.sum())
        if classes and len(y):
            found = np.bincount(y.astype(np.intp))
            counts = np.pad(counts, (0, max(0, len(found) - len(counts))))
            counts[:len(found)] += found
        for j in range(len(predictors)):
            merged[j] = _merge(merged[j], _sketch._buckets(*_sketch._signed(block[:, j], alpha)))
    out = []
    for found in merged:
        empty = (np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0))
        out.append(_sketch.coarsen(*(found or empty), k))
    return out, counts, n, total


def binned(handle: DatasetHandle, predictors: Sequence[str], target: str, edges: np.ndarray,
           n_edges: np.ndarray, check: Check) -> tuple[np.ndarray, np.ndarray]:
    """(bin codes, predictors × rows uint8; target, float64) of every row, read block by block."""
    rows = handle.num_rows
    codes = np.empty((len(predictors), rows), np.uint8)
    y = np.empty(rows)
    extra_codes: list[np.ndarray] = []
    extra_y: list[np.ndarray] = []
    at = 0
    for block in handle.batches([*predictors, target], READ_ROWS, dtype=np.float64):
        check(block[:, -1])
        c = _sketch.bin_columns(block[:, :-1], edges, n_edges)
        fit = max(0, min(len(block), rows - at))
        codes[:, at:at + fit], y[at:at + fit] = c[:, :fit], block[:fit, -1]
        if fit < len(block):  # more rows than registered (never for a registered version)
            extra_codes.append(c[:, fit:])
            extra_y.append(block[fit:, -1])
        at += len(block)
    if extra_codes:
        return np.concatenate([codes, *extra_codes], axis=1), np.concatenate([y, *extra_y])
    return (codes[:, :at], y[:at]) if at < rows else (codes, y)
