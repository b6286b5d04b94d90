"""Runner half of EDA: one streaming pass, noisy histograms out, nothing exact about a row.

Per column: categorical columns (booleans, and integers with few distinct values) get noisy value
counts; numeric columns get private clipping bounds (from a noisy power-of-two histogram of the
first rows) and a noisy equal-width histogram. Bins below the policy's small-count threshold are
suppressed. Summary statistics are derived from these histograms in the kernel, so they inherit
the same protection.

A Dask-backed dataset (``handle.partitioned``) gets the same histograms from partials computed on
its workers (:func:`_partitioned`); only counts come back to the runner.
"""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Iterator
from typing import Any

import numpy as np

from jupyter_fed.errors import PermissionDenied
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.eda.config import EdaConfig, parse, select_columns
from jupyter_fed.privacy.mechanisms import (
    N_MAG,
    magnitude_bins,
    noisy_counts,
    private_bounds,
    suppress_small,
)

BATCH_ROWS = 262_144


def _batches(handle: DatasetHandle, columns: list[str]) -> Iterator[np.ndarray]:
    stream = getattr(handle, "iter_batches", None)
    if stream is not None:
        yield from stream(columns, BATCH_ROWS)
    else:
        yield handle.to_numpy(columns, np.float64)


class _Numeric:
    """Accumulates one pass: magnitude counts on a prefix, then clipped bin counts."""

    def __init__(self, cfg: EdaConfig) -> None:
        self.cfg, self.mag = cfg, np.zeros(2 * N_MAG + 1)
        self.bounds: tuple[float, float] | None = None
        self.counts = np.zeros(cfg.bins)
        self.pending: list[np.ndarray] = []


def compute(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    cfg = parse(params.get("model_config"))
    handle = datasets["data"]
    policy = ctx.policy.get("data", {})
    k = int(policy.get("min_count", 10))
    features = [c.name for c in handle.info.columns if c.role != "id"]
    spec = (params.get("data_config") or {}).get(params.get("dataset", handle.info.name))
    columns = select_columns(spec, features)
    minimum = policy.get("min_rows") or handle.info.num_columns + 5
    if handle.info.num_rows < minimum:
        raise PermissionDenied(f"dataset {handle.info.name!r} has fewer than {minimum} rows",
                               "EDA needs more rows")
    rng = np.random.default_rng(secrets.randbits(128))  # never caller-controlled
    eps_col = cfg.epsilon / len(columns)
    if getattr(handle, "partitioned", False):
        return _step_result(_partitioned(ctx, handle, columns, cfg, eps_col, k, rng), handle, k)
    kinds = _kinds(handle, columns, cfg)
    numeric = {c: _Numeric(cfg) for c in columns if kinds[c] == "numeric"}
    categorical: dict[str, dict[float, int]] = {c: {} for c in columns if kinds[c] == "categorical"}
    seen = 0
    for block in _batches(handle, columns):
        ctx.progress(min(0.99, seen / max(handle.info.num_rows, 1)), "histograms")
        for j, c in enumerate(columns):
            x = block[:, j]
            if c in categorical:
                values, counts = np.unique(x, return_counts=True)
                acc = categorical[c]
                for v, n in zip(values.tolist(), counts.tolist(), strict=True):
                    acc[v] = acc.get(v, 0) + n
            else:
                _numeric_batch(numeric[c], x, seen, eps_col, k, rng)
        seen += len(block)
    out: dict[str, Any] = {}
    for c in columns:
        if c in categorical:
            out[c] = _categorical_result(categorical[c], eps_col, cfg, k, rng)
        else:
            st = numeric[c]
            if st.bounds is None:  # fewer rows than bounds_rows: decide bounds on what we have
                _set_bounds(st, eps_col, k, rng)
                for x in st.pending:
                    _bin(st, x)
                st.pending.clear()
            out[c] = _numeric_result(st, eps_col, cfg, k, rng)
    return _step_result(out, handle, k)


def _step_result(out: dict[str, Any], handle: DatasetHandle, k: int) -> StepResult:
    warnings = [f"{c}: {r['suppressed']} bin(s) below k={k} suppressed"
                for c, r in out.items() if r.get("suppressed")]
    return StepResult(outputs={"columns": out, "warnings": warnings,
                               "dataset": handle.info.name},
                      num_examples=0)


def _declared_kinds(handle: DatasetHandle, columns: list[str]) -> dict[str, str]:
    """From the schema: booleans categorical, integers to ``probe``, everything else numeric."""
    dtypes = {c.name: c.dtype for c in handle.info.columns}
    kinds = {}
    for c in columns:
        dt = dtypes.get(c, "double")
        kinds[c] = "categorical" if dt == "bool" else "numeric"
        if dt.startswith(("int", "uint")):
            kinds[c] = "probe"
    return kinds


def _kinds(handle: DatasetHandle, columns: list[str], cfg: EdaConfig) -> dict[str, str]:
    """Booleans and small-cardinality integers are categorical; everything else numeric."""
    kinds = _declared_kinds(handle, columns)
    probe = [c for c in columns if kinds[c] == "probe"]
    if probe:
        distinct: dict[str, set[float]] = {c: set() for c in probe}
        for block in _batches(handle, probe):
            for j, c in enumerate(probe):
                if len(distinct[c]) <= cfg.max_categories:
                    distinct[c].update(np.unique(block[:, j]).tolist())
        for c in probe:
            kinds[c] = "categorical" if len(distinct[c]) <= cfg.max_categories else "numeric"
    return kinds


def _numeric_batch(st: _Numeric, x: np.ndarray, seen: int, eps_col: float, k: int,
                   rng: np.random.Generator) -> None:
    if st.bounds is None:
        take = max(0, st.cfg.bounds_rows - seen)
        st.mag += np.bincount(magnitude_bins(x[:take]), minlength=2 * N_MAG + 1)
        st.pending.append(x)
        if seen + len(x) >= st.cfg.bounds_rows:
            _set_bounds(st, eps_col, k, rng)
            for held in st.pending:
                _bin(st, held)
            st.pending.clear()
    else:
        _bin(st, x)


def _set_bounds(st: _Numeric, eps_col: float, k: int, rng: np.random.Generator) -> None:
    eps_b = eps_col * st.cfg.bounds_share
    # Union bound over the grid: every empty bin stays below the threshold with probability 99%
    # (Laplace tail: P(noise > t) = exp(-t·eps)/2), so bounds come from where the data is.
    threshold = k + math.log(len(st.mag) / 0.01) / eps_b
    st.bounds = private_bounds(st.mag, eps_b, threshold, rng) or (0.0, 0.0)


def _bin(st: _Numeric, x: np.ndarray) -> None:
    st.counts += _bin_counts(x, st.bounds, st.cfg.bins)


def _bin_counts(x: np.ndarray, bounds: tuple[float, float] | None, bins: int) -> np.ndarray:
    lo, hi = bounds or (0.0, 0.0)
    if hi <= lo:
        return np.zeros(bins)
    idx = ((np.clip(x, lo, hi) - lo) * (bins / (hi - lo))).astype(np.int64)
    return np.bincount(np.minimum(idx, bins - 1), minlength=bins)


def _numeric_result(st: _Numeric, eps_col: float, cfg: EdaConfig, k: int,
                    rng: np.random.Generator) -> dict[str, Any]:
    lo, hi = st.bounds or (0.0, 0.0)
    if hi <= lo:
        return {"kind": "numeric", "edges": [], "counts": [], "suppressed": 0,
                "note": "too few rows for private bounds"}
    eps_h = eps_col * (1 - cfg.bounds_share)
    counts, hidden = suppress_small(noisy_counts(st.counts, eps_h, cfg.mechanism, rng, cfg.delta), k)
    return {"kind": "numeric", "edges": np.linspace(lo, hi, cfg.bins + 1).tolist(),
            "counts": counts.tolist(), "suppressed": hidden, "epsilon": eps_col,
            "mechanism": cfg.mechanism}


def _categorical_result(acc: dict[float, int], eps_col: float, cfg: EdaConfig, k: int,
                        rng: np.random.Generator) -> dict[str, Any]:
    values = sorted(acc)
    counts, hidden = suppress_small(
        noisy_counts(np.array([acc[v] for v in values], dtype=float), eps_col, cfg.mechanism, rng,
                     cfg.delta), k)
    keep = counts > 0  # a suppressed category is not even named
    return {"kind": "categorical", "values": [v for v, ok in zip(values, keep, strict=True) if ok],
            "counts": counts[keep].tolist(), "suppressed": hidden, "epsilon": eps_col,
            "mechanism": cfg.mechanism}


# -- Dask-backed datasets: partials on the workers --------------------------------------------------
def _partitioned(ctx: StepContext, handle: Any, columns: list[str], cfg: EdaConfig, eps_col: float,
                 k: int, rng: np.random.Generator) -> dict[str, Any]:
    """:func:`compute`'s histograms from partials that the dataset's Dask workers compute.

    Pass 1 brings back, per partition, value counts of the categorical candidates (an integer
    column's stop at ``max_categories`` distinct values: it is numeric then) and the magnitude
    counts of the rows before ``bounds_rows``; pass 2, the bin counts under the private bounds.

    The noise is drawn in the order of the streaming pass, so one RNG gives the same output on
    either backend. The bounds are needed before pass 2, but in that order they may come after an
    earlier column's released histogram; as every draw's size depends on shapes only, a first run
    of the draws on empty histograms learns the bounds, and the release runs again from the same
    RNG state. The first run's output is discarded: what leaves carries one draw of noise.
    """
    declared = _declared_kinds(handle, columns)
    kinds = [declared[c] for c in columns]
    counts: list[dict[float, int] | None] = [{} for _ in columns]
    mags = [np.zeros(2 * N_MAG + 1) for _ in columns]
    rows, total = 0, max(handle.info.num_rows, 1)
    first = functools.partial(_first_pass, kinds=kinds, bounds_rows=cfg.bounds_rows,
                              cap=cfg.max_categories)
    for n, parts in handle.map_blocks(columns, first, BATCH_ROWS):
        ctx.progress(min(0.5, 0.5 * rows / total), "histograms")
        rows += n
        for j, (found, mag) in enumerate(parts):
            if mag is not None:
                mags[j] += mag
            acc = counts[j]
            if kinds[j] == "numeric" or acc is None:
                continue
            if found is None or (kinds[j] == "probe" and len(acc.keys() | found.keys()) >
                                 cfg.max_categories):
                counts[j] = None  # too many distinct values: numeric after all
                continue
            for v, m in found.items():
                acc[v] = acc.get(v, 0) + m
    categorical = {c: acc for c, kind, acc in zip(columns, kinds, counts, strict=True)
                   if kind != "numeric" and acc is not None}
    numeric = {c: _Numeric(cfg) for c in columns if c not in categorical}
    for c, st in numeric.items():
        st.mag = mags[columns.index(c)]
    crossing = rows >= cfg.bounds_rows  # the streaming pass sets every bound on the way then

    def release() -> dict[str, Any]:
        if crossing:
            for st in numeric.values():
                _set_bounds(st, eps_col, k, rng)
        out = {}
        for c in columns:
            if c in categorical:
                out[c] = _categorical_result(categorical[c], eps_col, cfg, k, rng)
                continue
            if not crossing:
                _set_bounds(numeric[c], eps_col, k, rng)
            out[c] = _numeric_result(numeric[c], eps_col, cfg, k, rng)
        return out

    state = rng.bit_generator.state
    release()  # learns the bounds; its (empty) histograms are thrown away
    if numeric:
        second = functools.partial(_bin_pass, bounds=[st.bounds for st in numeric.values()],
                                   bins=cfg.bins)
        done = 0
        for n, parts in handle.map_blocks(list(numeric), second, BATCH_ROWS):
            ctx.progress(0.5 + min(0.49, 0.5 * done / total), "histograms")
            done += n
            for st, part in zip(numeric.values(), parts, strict=True):
                st.counts += part
    rng.bit_generator.state = state
    return release()


def _first_pass(block: np.ndarray, first_row: int, *, kinds: list[str], bounds_rows: int,
                cap: int) -> tuple[int, list[tuple[dict[float, int] | None, np.ndarray | None]]]:
    """Per column: value counts (``None``: more than ``cap`` distinct integers) and magnitudes."""
    take = max(0, bounds_rows - first_row)
    out: list[tuple[dict[float, int] | None, np.ndarray | None]] = []
    for j, kind in enumerate(kinds):
        x = block[:, j]
        found = mag = None
        if kind != "numeric":
            values, n = np.unique(x, return_counts=True)
            if kind == "categorical" or len(values) <= cap:
                found = dict(zip(values.tolist(), n.tolist(), strict=True))
        if kind != "categorical":
            mag = np.bincount(magnitude_bins(x[:take]), minlength=2 * N_MAG + 1)
        out.append((found, mag))
    return len(block), out


def _bin_pass(block: np.ndarray, first_row: int, *, bounds: list[tuple[float, float] | None],
              bins: int) -> tuple[int, list[np.ndarray]]:
    return len(block), [_bin_counts(block[:, j], b, bins) for j, b in enumerate(bounds)]
