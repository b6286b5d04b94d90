"""Runner half of stats: exact statistics of a whole dataset, DP statistics of filtered rows.

In order: resolve the query (columns, filter, conditioning) and the binary columns (registered,
agreed across the session's runners); answer an identical earlier query from the cache; then

* **no filter** — exact statistics of every row of the registered dataset (or view): stream the
  rows once, refuse if the dataset has fewer rows than the release minimum, withhold whatever
  describes a small group (``_protect``), refuse or trim a query whose row sets are near earlier
  answers' (``_store``: the same file under any name, views included);
* **a filter** — a differentially private answer (``_private``), charged to the ledger by the
  runner before any row was read, or refused where the policy is ``exact_only``.

Finally check the session's peer contract on exactly what would be shared, and share it, or not.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from jupyter_fed.contracts import Contract, filter_columns, lookup, parse_filter
from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult, file_version
from jupyter_fed.packages.stats._explore import StatsView
from jupyter_fed.packages.stats._moments import Stats
from jupyter_fed.packages.stats._private import private_stats
from jupyter_fed.packages.stats._protect import protect
from jupyter_fed.packages.stats._scan import Scan, scan
from jupyter_fed.packages.stats._smpc import to_sums
from jupyter_fed.packages.stats._store import QueryStore
from jupyter_fed.packages.stats.config import parse_data_config, parse_model_config
from jupyter_fed.privacy.differencing import distance, file_bits
from jupyter_fed.privacy.suppression import release_minimum

log = logging.getLogger("jupyter_fed.packages.stats")

__all__ = ["compute", "kinds"]


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
    if handle.path is None:
        return [str(handle.info.registered_at), handle.info.num_rows, None, None]
    size, mtime_ns, etag = file_version(handle.path)
    return [str(handle.info.registered_at), handle.info.num_rows, mtime_ns, size,
            *([etag] if etag else [])]


def _contract_columns(contract: Contract | None) -> tuple[list[str], list[str]]:
    """Columns a contract reads, and those it conditions on (so that it can be evaluated)."""
    if contract is None:
        return [], []
    calls = contract.calls()
    conditioning = [c.args[1] for c in calls if (fn := lookup(c.func)) is not None and fn.conditional]
    return contract.columns(), list(dict.fromkeys(conditioning))


def _release(store: QueryStore, group: str, handle: DatasetHandle, found: Scan, stats: Stats,
             minimum: int) -> tuple[Stats, list[str]]:
    """The differencing rule: refuse the query, or drop blocks, whose rows are near earlier ones.

    Row sets are compared in the file's numbering across every dataset on the file; a set near
    the difference, intersection or union of two remembered ones is refused too (three-query
    trackers), so views cannot be combined to isolate a few rows.
    """
    notes: list[str] = []
    dataset = handle.info.name
    rows, memory = file_bits(handle, found.rows), store.rowsets
    with memory.locked(group):
        if memory.nearest(group, rows, minimum) is not None:
            raise PermissionDenied(
                f"the rows of {dataset!r} differ from those of an earlier answer (this dataset, "
                f"another one on the same file, or a combination of two) by fewer than {minimum} "
                "rows: the answers together would describe those rows",
                "ask about the same rows, or ask the custodian for a view that differs by at "
                f"least {minimum} rows")
        accepted = [rows]
        for b in list(stats.cond):
            ones = file_bits(handle, found.cond_rows[b])
            groups = [ones, rows & ~ones]
            near = any(memory.nearest(group, g, minimum) is not None for g in groups) or any(
                0 < distance(g, a) < minimum for g in groups for a in accepted)
            if near:
                del stats.cond[b]
                notes.append(f"statistics conditioned on {b} are not sent: their rows differ from "
                             f"those of another answer by fewer than {minimum} rows")
            else:
                accepted += groups
        memory.remember(group, accepted)
    return stats, notes


def _binary(handle: DatasetHandle, columns: list[str], agreed: Any) -> list[str] | None:
    """Binary columns: registered as binary here and, when the session agreed kinds across its
    runners, binary at every runner (else numeric everywhere). ``None``: not recorded."""
    info = {c.name: c for c in handle.info.columns}
    kinds = [getattr(info[c], "kind", None) for c in columns]
    if any(k is None for k in kinds):
        return None  # registered before kinds were recorded: learn from the values
    registered = [c for c, k in zip(columns, kinds, strict=True) if k == "binary"]
    if isinstance(agreed, list):
        return [c for c in registered if c in agreed]
    return registered


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
    binary = _binary(handle, columns, params.get("binary"))
    candidates = [c for c in (columns if query.condition_on is None else
                              dict.fromkeys([*query.condition_on, *conditioning])) if c in columns]
    row_filter = parse_filter(query.filter) if query.filter else None
    if row_filter is not None:
        _columns(handle, filter_columns(row_filter), [])  # unknown or id columns fail here, by name
    policy = ctx.policy.get("data", {})
    minimum = release_minimum(policy, len(columns))
    _check_size(policy, handle, columns, binary if binary is not None else candidates)
    grant = policy.get("grant") or {}
    group = str(grant.get("group") or dataset)
    store = QueryStore(ctx.cache_dir)
    key = store.key({"principal": ctx.principal, "dataset": dataset, "version": _version(handle),
                     "columns": columns, "filter": query.filter, "candidates": candidates,
                     "binary": binary, "minimum": minimum, "epsilon": model_cfg.epsilon})
    answer = store.load_answer(key)
    cached = answer is not None
    if answer is not None:
        stats, warnings = answer
        warnings = [*warnings, "an identical earlier query was answered from this runner's cache"]
        log.info("stats on %s for %s answered from the cache", dataset, ctx.principal or "?")
    elif row_filter is not None:
        epsilon = float(grant.get("epsilon", model_cfg.epsilon))
        delta = float(grant.get("delta", min(model_cfg.delta, 1e-6)))
        if epsilon <= 0 or delta <= 0:
            raise PermissionDenied("a filtered query must be charged before it runs",
                                   "send it through a runner, which debits its epsilon")
        stats, warnings = private_stats(ctx, handle, columns, row_filter, binary or [],
                                        data_cfg.batch_rows, epsilon, delta, minimum)
        store.save_answer(key, stats, warnings)
    else:
        if handle.info.num_rows < minimum:
            raise PermissionDenied(
                f"dataset {dataset!r} has fewer rows than the {minimum} this runner shares exact "
                f"statistics of (max of k, {len(columns)} attributes + 5"
                f"{', and the policy min_rows' if policy.get('min_rows') else ''})",
                "select fewer columns, or use a larger dataset")
        found = scan(ctx, handle, columns, None, candidates, data_cfg.batch_rows, binary)
        if found.stats.total.n < minimum:
            raise PermissionDenied(f"dataset {dataset!r} has fewer rows than the {minimum} this "
                                   "runner shares exact statistics of", "use a larger dataset")
        stats, warnings = protect(found.stats, minimum)
        stats, more = _release(store, group, handle, found, stats, minimum)
        warnings += more
        store.save_answer(key, stats, warnings)
    outputs: dict[str, Any] = {"dataset": dataset, "filter": query.filter, "cached": cached}
    if contract is not None:
        report = StatsView(stats).evaluate_contract(contract)
        outputs["contract"] = report.to_json()
        if not report.passed and model_cfg.send_action == "block":
            failed = "; ".join(report.messages())
            ctx.progress(1.0, "blocked by the contract")
            # Under smpc a blocked silo still takes part in the secure sum, adding zeros.
            zeros = _smpc_sums(None, params) if params.get("smpc") else {}
            return StepResult(tensors=zeros, outputs={**outputs, "blocked": True, "warnings": [
                *warnings, f"statistics not shared, the contract failed: {failed}"]})
        if not report.passed:
            warnings.append("statistics shared although the contract failed: "
                            + "; ".join(report.messages()))
    arrays, meta = stats.to_tensors()
    if params.get("smpc"):  # sums in the session's layout, masked by the runner before leaving
        arrays = _smpc_sums(stats, params)
        meta.pop("columns")
    ctx.progress(1.0, "done")
    return StepResult(tensors=arrays, outputs={**outputs, **meta, "blocked": False,
                                               "warnings": warnings},
                      num_examples=round(stats.total.n))


def _smpc_sums(stats: Stats | None, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """``stats`` as the sums an smpc session adds up, in the layout the coordinator fixed."""
    layout = params["smpc"]
    try:
        return to_sums(stats, [str(c) for c in layout["columns"]],
                       [str(c) for c in layout["conditioned"]])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("the smpc layout does not match this dataset's statistics",
                          "every dataset of an smpc session must contribute the same columns"
                          ) from None


def _check_size(policy: dict[str, Any], handle: DatasetHandle, columns: list[str],
                binary: list[str]) -> None:
    """Refuse before reading a query whose statistics would need more memory than allowed."""
    p, b, n = len(columns), len(binary), max(handle.info.num_rows, 1)
    needed = 8 * (3 * p * p + 3 * b * p) + (b + 1) * n / 8 + 4 * (32 << 20)
    limit = float(policy.get("max_statistics_mb") or 512) * (1 << 20)
    if needed > limit:
        raise PermissionDenied(f"these statistics ({p} columns, {b} of them binary) need about "
                               f"{needed / (1 << 20):.0f} MB, more than the "
                               f"{limit / (1 << 20):.0f} MB this runner allows",
                               "select fewer columns, or set condition_on to the binary columns "
                               "you need")


def kinds(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """The ``kinds`` step: the registered kind of each column the query would read.

    Reads the registered schema only (public in the catalog), never a row: the coordinator uses
    it to agree which columns are binary at every runner before ``compute``.
    """
    handle = datasets["data"]
    dataset = str(params.get("dataset") or handle.info.name)
    data_cfg = parse_data_config(params.get("data_config"))
    model_cfg = parse_model_config(params.get("model_config"))
    query = data_cfg.query_for(dataset)
    read, conditioning = _contract_columns(model_cfg.parsed)
    columns = _columns(handle, query.columns, read + conditioning + list(query.condition_on or []))
    info = {c.name: c for c in handle.info.columns}
    return StepResult(outputs={"kinds": {c: getattr(info[c], "kind", None) for c in columns}})
