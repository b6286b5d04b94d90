"""Runner half of stats: exact mergeable statistics of one dataset, and the rules on what leaves.

In order: resolve the query (columns, filter, conditioning); answer an identical earlier query
from the cache; otherwise stream the rows once, refuse if too few rows are selected, withhold
whatever describes a small group (``_protect``), refuse or trim a query whose row sets differ from
earlier answers by fewer than ``k`` rows (``_store``); finally check the session's contract on
exactly what would be shared, and share it, or not.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from jupyter_fed.contracts import Contract, filter_columns, lookup, parse_filter
from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.stats._explore import StatsView
from jupyter_fed.packages.stats._moments import Stats
from jupyter_fed.packages.stats._protect import protect
from jupyter_fed.packages.stats._scan import Scan, scan
from jupyter_fed.packages.stats._store import QueryStore, distance
from jupyter_fed.packages.stats.config import parse_data_config, parse_model_config

log = logging.getLogger("jupyter_fed.packages.stats")

__all__ = ["compute"]


def _columns(handle: DatasetHandle, spec: list[str | int], extra: list[str]) -> list[str]:
    """Names of the selected columns: ``[]`` is every non-id column; indices count from 0."""
    cols = handle.info.columns
    by_name = {c.name: c for c in cols}
    chosen: list[str] = []
    for item in spec or [c.name for c in cols if c.role != "id"]:
        if isinstance(item, int):
            if item >= len(cols):
                raise ConfigError(f"column index {item} is out of range: dataset "
                                  f"{handle.info.name!r} has {len(cols)} columns", "")
            item = cols[item].name
        if item not in by_name:
            raise ConfigError(f"dataset {handle.info.name!r} has no column {item!r}",
                              f"its columns are {', '.join(by_name)}")
        if by_name[item].role == "id":
            raise ConfigError(f"{item!r} is an id column of {handle.info.name!r}; it has no "
                              "statistics", "leave it out of the columns")
        chosen.append(item)
    chosen += [c for c in extra if c in by_name and by_name[c].role != "id"]
    return list(dict.fromkeys(chosen))


def _version(handle: DatasetHandle) -> list[Any]:
    """What identifies the data behind an answer: registration, and the file as it is now."""
    path = getattr(handle, "path", None)
    st = path.stat() if path is not None else None
    return [str(handle.info.registered_at), handle.info.num_rows,
            st.st_mtime_ns if st else None, st.st_size if st else None]


def _contract_columns(contract: Contract | None) -> tuple[list[str], list[str]]:
    """Columns a contract reads, and those it conditions on (so that it can be evaluated)."""
    if contract is None:
        return [], []
    calls = contract.calls()
    conditioning = [c.args[1] for c in calls if (fn := lookup(c.func)) is not None and fn.conditional]
    return contract.columns(), list(dict.fromkeys(conditioning))


def _release(store: QueryStore, dataset: str, found: Scan, stats: Stats, k: int
             ) -> tuple[Stats, list[str]]:
    """The differencing rule: refuse the query, or drop blocks, whose rows are near earlier ones."""
    notes: list[str] = []
    with store.locked(dataset):
        if store.nearest(dataset, found.rows, k) is not None:
            raise PermissionDenied(
                f"the rows this query selects from {dataset!r} differ from those of an earlier "
                f"query by fewer than {k} rows: the two answers together would describe those rows",
                "ask about the same rows, or about rows that differ by at least "
                f"{k} (the larger of the dataset's min_count and its attributes + 5)")
        accepted = [found.rows]
        for b in list(stats.cond):
            ones = found.cond_rows[b]
            groups = [ones, found.rows ^ ones]
            near = any(store.nearest(dataset, g, k) is not None for g in groups) or any(
                0 < distance(g, a) < k for g in groups for a in accepted)
            if near:
                del stats.cond[b]
                notes.append(f"statistics conditioned on {b} are not sent: their rows differ from "
                             f"those of another answer by fewer than {k} rows")
            else:
                accepted += groups
        store.remember(dataset, accepted)
    return stats, notes


def compute(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """The ``compute`` step: statistics of dataset role ``data`` for the session's query."""
    handle = datasets["data"]
    dataset = str(params.get("dataset") or handle.info.name)
    data_cfg = parse_data_config(params.get("data_config"))
    model_cfg = parse_model_config(params.get("model_config"))
    query = data_cfg.query_for(dataset)
    contract = model_cfg.parsed
    read, conditioning = _contract_columns(contract)
    columns = _columns(handle, query.columns, read + conditioning + list(query.condition_on or []))
    candidates = columns if query.condition_on is None else \
        [c for c in dict.fromkeys([*query.condition_on, *conditioning]) if c in columns]
    row_filter = parse_filter(query.filter) if query.filter else None
    if row_filter is not None:
        _columns(handle, filter_columns(row_filter), [])  # unknown or id columns fail here, by name
    policy = ctx.policy.get("data", {})
    k = int(policy.get("min_count") or 10)
    minimum = max(len(columns) + 5, int(policy.get("min_rows") or 0))
    block_min = max(k, len(columns) + 5)
    store = QueryStore(ctx.cache_dir)
    key = store.key({"principal": ctx.principal, "dataset": dataset,
                     "version": _version(handle),
                     "columns": columns, "filter": query.filter, "candidates": candidates,
                     "k": k, "minimum": minimum})
    answer = store.load_answer(key)
    cached = answer is not None
    if answer is not None:
        stats, warnings = answer
        warnings = [*warnings, "an identical earlier query was answered from this runner's cache"]
        log.info("stats on %s for %s answered from the cache", dataset, ctx.principal or "?")
    else:
        found = scan(ctx, handle, columns, row_filter, candidates, data_cfg.batch_rows)
        if found.stats.total.n < minimum:
            raise PermissionDenied(
                f"the query selects fewer rows of {dataset!r} than the {minimum} this runner "
                f"shares statistics of ({len(columns)} attributes + 5"
                f"{', or the policy min_rows' if policy.get('min_rows') else ''})",
                "loosen the filter, or select fewer columns")
        stats, warnings = protect(found.stats, k, block_min)
        # The distance two released row sets must keep is max(k, attributes + 5): this also refuses
        # an incremental update (rows appended to the file) that adds fewer rows than that.
        stats, more = _release(store, dataset, found, stats, block_min)
        warnings += more
        store.save_answer(key, stats, warnings)
    outputs: dict[str, Any] = {"dataset": dataset, "filter": query.filter, "cached": cached}
    if contract is not None:
        report = StatsView(stats).evaluate_contract(contract)
        outputs["contract"] = report.to_json()
        if not report.passed and model_cfg.send_action == "block":
            failed = "; ".join(report.messages())
            ctx.progress(1.0, "blocked by the contract")
            return StepResult(outputs={**outputs, "blocked": True, "warnings": [
                *warnings, f"statistics not shared, the contract failed: {failed}"]})
        if not report.passed:
            warnings.append("statistics shared although the contract failed: "
                            + "; ".join(report.messages()))
    arrays, meta = stats.to_tensors()
    ctx.progress(1.0, "done")
    return StepResult(tensors=arrays, outputs={**outputs, **meta, "blocked": False,
                                               "warnings": warnings},
                      num_examples=round(stats.total.n))
