"""Runner half of EDA: exact aggregates in one or two passes, DP releases out, reasons for gaps.

Per column: categorical columns (booleans, the registered schema's binary and label columns, and
those ``model_config.categorical`` names) get DP partition selection of their values; numeric
columns get clipping bounds — declared at registration (free) or private (DP quantiles) — then a
noisy histogram with the clipped fraction, and noisy clipped sums for the mean and spread. The
kernel computes every statistic from these releases. Which columns are categorical is decided
from public facts only: counting distinct values to decide would itself leak (one rare value
tips the count).

A column that cannot be released says why (in its result, the warnings the session log shows,
and the kernel's ``describe()`` and plots); so does a column whose bounds clip many rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.errors import PermissionDenied
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.eda._release import (
    release_categorical,
    release_numeric,
    withheld_bounds,
)
from jupyter_fed.packages.eda._scan import ColumnSpec, Partial, scan
from jupyter_fed.packages.eda.config import EdaConfig, dataset_delta, parse, select_columns
from jupyter_fed.privacy.bounds import Bounds, private_bounds

__all__ = ["column_kinds", "compute"]


def column_kinds(handle: DatasetHandle, columns: list[str], cfg: EdaConfig) -> dict[str, str]:
    """``categorical`` or ``numeric`` per column, from the registered schema and the config."""
    info = {c.name: c for c in handle.info.columns}
    kinds = {}
    for c in columns:
        col = info[c]
        categorical = c in cfg.categorical or col.dtype == "bool" or \
            getattr(col, "kind", None) in ("binary", "label")
        kinds[c] = "categorical" if categorical else "numeric"
    return kinds


def _grant(ctx: StepContext, handle: DatasetHandle, cfg: EdaConfig) -> tuple[float, float]:
    """(epsilon, delta) for this dataset: what the runner debited, checked against the config."""
    grant = (ctx.policy.get("data") or {}).get("grant")
    if grant is None:  # outside a runner (tests, tools): the default policy's cap
        return cfg.epsilon, dataset_delta(cfg, handle.info.num_rows)
    if cfg.epsilon > float(grant["epsilon"]) * (1 + 1e-9):
        raise RuntimeError("EDA would spend more epsilon than the runner debited")
    return float(grant["epsilon"]), float(grant["delta"])


def compute(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    cfg = parse(params.get("model_config"))
    handle = datasets["data"]
    policy = ctx.policy.get("data", {})
    k = int(policy.get("min_count", 10))
    features = [c.name for c in handle.info.columns if c.role != "id"]
    spec = (params.get("data_config") or {}).get(params.get("dataset", handle.info.name))
    columns = select_columns(spec, features)
    unknown = [c for c in cfg.categorical if c not in features]
    if unknown:
        raise PermissionDenied(f"model_config.categorical: dataset {handle.info.name!r} has no "
                               f"column(s) {', '.join(unknown)}", "check the catalog schema")
    minimum = policy.get("min_rows") or handle.info.num_columns + 5
    if handle.info.num_rows < minimum:
        raise PermissionDenied(f"dataset {handle.info.name!r} has fewer than {minimum} rows",
                               "EDA needs more rows")
    epsilon, delta = _grant(ctx, handle, cfg)
    eps_col, delta_col = epsilon / len(columns), delta / len(columns)
    kinds = column_kinds(handle, columns, cfg)
    declared = {c.name: c.bounds for c in handle.info.columns if getattr(c, "bounds", None)}
    specs = [ColumnSpec(kinds[c], tuple(declared[c]) if kinds[c] == "numeric" and c in declared
                        else None, cfg.bins) for c in columns]
    first = scan(ctx, handle, columns, specs, cfg.bounds_rows, (0.0, 0.5))
    bounds: dict[str, Bounds | None] = {}
    for c, s in zip(columns, specs, strict=True):
        if s.kind == "numeric":
            bounds[c] = Bounds(*s.bounds, "declared") if s.bounds else private_bounds(
                first[c].grid if first[c].grid is not None else np.zeros(0),
                first[c].prefix_values, eps_col * cfg.bounds_share)
    learnt = [c for c, s in zip(columns, specs, strict=True)
              if s.kind == "numeric" and s.bounds is None and bounds[c] is not None]
    if learnt:  # second pass: bin the columns whose bounds were just learnt
        second = scan(ctx, handle, learnt, [ColumnSpec("numeric", (bounds[c].lo, bounds[c].hi),
                                                       cfg.bins) for c in learnt  # type: ignore[union-attr]
                                            ], cfg.bounds_rows, (0.5, 0.5))
        first.update(second)
    out = {c: _release(c, kinds[c], first[c], bounds.get(c), cfg, eps_col, delta_col, k)
           for c in columns}
    return _step_result(out, handle, k, epsilon, len(columns))


def _release(column: str, kind: str, part: Partial, bounds: Bounds | None, cfg: EdaConfig,
             eps_col: float, delta_col: float, k: int) -> dict[str, Any]:
    if kind == "categorical":
        return release_categorical(part, eps_col, delta_col, k)
    if bounds is None:
        return {**withheld_bounds(eps_col * cfg.bounds_share), "epsilon": eps_col}
    rest = eps_col - bounds.epsilon
    return release_numeric(part, bounds, rest, cfg.mechanism, delta_col, k, cfg.bins)


def _step_result(out: dict[str, Any], handle: DatasetHandle, k: int, epsilon: float,
                 ncols: int) -> StepResult:
    name = handle.info.name
    warnings = [f"{name}: epsilon {epsilon:g} split over {ncols} column(s), {epsilon / ncols:.3g} "
                "each (choosing fewer columns gives each more)"]
    for c, r in out.items():
        if r.get("withheld"):
            warnings.append(f"{name}.{c} not released: {r['withheld']}")
        for flag in r.get("flags", []):
            warnings.append(f"{name}.{c}: {flag}")
        if r.get("suppressed"):
            warnings.append(f"{name}.{c}: {r['suppressed']} bin(s) with a noisy count below "
                            f"k={k} suppressed")
    withheld = [c for c, r in out.items() if r.get("withheld")]
    return StepResult(outputs={"columns": out, "warnings": warnings, "dataset": name,
                               "epsilon_per_column": epsilon / ncols, "withheld": withheld},
                      num_examples=0)
