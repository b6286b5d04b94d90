"""Coordinator half of stats: agree on column kinds, check contributions, merge, check again.

Before the runners compute, the session agrees which columns are binary from every runner's
registered schema (:meth:`StatsPlan.agree`): a column binary at one runner and not at another is
numeric everywhere, so the merge never mixes kinds (a pixel that is 0/1 at one silo and 0..16 at
another used to turn 732 of 4,096 covariance entries NaN).

Merging is exact (the pooled rows' moments, up to rounding). A contribution the runner blocked,
one that fails the session's peer contract with ``receive_action="block"``, or one that is
malformed is left out — of the merge and of the stored results, so its values are not kept
anywhere — and the reason names the failing rule, never the value. The merged contract is then
checked on the merged statistics. A session left with no contribution, or whose merged contract
fails (with ``receive_action="block"``), fails — naming the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._analytics import AnalyticsPlan, Contribution, MergeResult
from jupyter_fed.packages._io import Payload, SecureSum, SessionIO
from jupyter_fed.packages._schema import Problem, check_columns
from jupyter_fed.packages.stats._explore import StatsView
from jupyter_fed.packages.stats._moments import Stats, merge_all
from jupyter_fed.packages.stats._smpc import NAMES, from_sums
from jupyter_fed.packages.stats.config import parse_data_config, parse_model_config

__all__ = ["StatsPlan"]


class StatsPlan(AnalyticsPlan):
    """One ``compute`` step per dataset, then a contract check and an exact merge."""

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 1) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.data = parse_data_config(data_config)  # validate now: errors name their fields
        self.config = parse_model_config(model_config)
        self.binary: list[str] | None = None
        self.layout: dict[str, list[str]] | None = None
        """Under smpc: the columns and conditioned blocks every runner sends, in order."""

    async def prepare(self, io: SessionIO) -> None:
        """Agree on the binary columns: binary in every runner's registered schema (the
        ``kinds`` step reads each runner's schema, never a row), else numeric everywhere.

        A column whose kind was not recorded at some runner (a dataset registered before kinds
        were) is left to that runner's values.
        """
        found = await io.step("kinds", {c.client_id: Payload(self.step_params(c.datasets["data"]))
                                        for c in io.clients}, round=0)
        kinds: dict[str, set[str | None]] = {}
        for answer in found:
            for column, kind in (answer.outputs.get("kinds") or {}).items():
                kinds.setdefault(str(column), set()).add(kind)
        self.binary = sorted(c for c, seen in kinds.items() if seen == {"binary"})
        if self.config.smpc:
            self.layout = self._layout({a.client_id: list(a.outputs.get("kinds") or {})
                                        for a in found})

    def _layout(self, columns: dict[str, list[str]]) -> dict[str, list[str]]:
        """One layout for every runner's sums: a secure sum adds vectors position by position."""
        first = next(iter(columns.values()), [])
        differ = {cid: cols for cid, cols in columns.items() if sorted(cols) != sorted(first)}
        if differ:
            raise SessionFailed("smpc needs every dataset to contribute the same columns: "
                                + "; ".join(f"{cid} has {', '.join(cols)}"
                                            for cid, cols in columns.items()),
                                "name the columns in data_config.columns")
        return {"columns": first, "conditioned": [c for c in first if c in (self.binary or [])]}

    def step_params(self, dataset: str) -> dict[str, Any]:
        params = super().step_params(dataset)
        if self.binary is not None:
            params["binary"] = self.binary
        if self.layout is not None:
            params["smpc"] = self.layout
        return params

    def secure_sum(self) -> SecureSum | None:
        """Under smpc: every tensor of the answer (see ``_smpc``), summed securely."""
        if not self.config.smpc:
            return None
        return SecureSum(NAMES, clip=self.config.smpc_clip, precision=self.config.smpc_precision)

    def merge_total(self, total: dict[str, np.ndarray], contributions: list[Contribution]
                    ) -> MergeResult:
        """The merged statistics from the secure sum: no peer's statistics exist here."""
        assert self.layout is not None
        rejected = {c.client_id: self._check(c)[1] for c in contributions if c.outputs.get("blocked")}
        shared = [c for c in contributions if not c.outputs.get("blocked")]
        binary = [b for b in self.layout["columns"]
                  if shared and all(b in (c.outputs.get("binary") or []) for c in shared)]
        merged = from_sums(total, self.layout["columns"], self.layout["conditioned"], binary)
        if not shared or merged.total.n <= 0:
            why = "; ".join(f"{cid}: {reason}" for cid, reason in rejected.items())
            raise SessionFailed(f"no contribution was left to merge ({why or 'none arrived'})",
                                "check the contract's rules")
        private = [c.outputs["private"] for c in shared if c.outputs.get("private")]
        if private:
            merged.private = {k: max(float(p.get(k, 0.0)) for p in private)
                              for k in ("epsilon", "delta")}
        contributors = [{"client_id": c.client_id, "dataset": c.dataset,
                         "cached": bool(c.outputs.get("cached")), "filter": c.outputs.get("filter"),
                         "warnings": list(c.outputs.get("warnings", []))} for c in shared]
        return self._results(merged, {}, [], rejected, smpc=True, contributors=contributors)

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        from jupyter_fed.contracts import filter_columns, parse_filter

        problems: list[Problem] = []
        for info in datasets.values():
            name, where = info["name"], f"{runner}/{info['name']}"
            query = self.data.query_for(name)
            problems += check_columns("data_config.columns", query.columns, info, where,
                                      index_base=0)
            if query.filter:
                problems += check_columns("data_config.filter",
                                          filter_columns(parse_filter(query.filter)), info, where)
            problems += check_columns("data_config.condition_on", query.condition_on or [], info,
                                      where)
            contract = self.config.parsed
            if contract is not None:
                problems += check_columns("model_config.contract", contract.columns(), info, where)
        return problems

    def _check(self, c: Contribution) -> tuple[Stats | None, str, list[str]]:
        """The contribution's statistics, or why it is left out; plus notes for the results."""
        out = c.outputs
        if out.get("blocked"):
            rules = [f"rule {f['rule']} failed: {f['text']}"
                     for f in (out.get("contract") or {}).get("failed", [])]
            return None, "not shared by its runner: " + ("; ".join(rules) or "blocked"), []
        try:
            stats = Stats.from_tensors(c.tensors, out)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            return None, f"malformed statistics ({type(exc).__name__}: {exc})", []
        if stats.total.n <= 0 or not np.isfinite(stats.total.n):
            return None, "malformed statistics (no rows)", []
        contract = self.config.parsed
        if contract is None:
            return stats, "", []
        report = StatsView(stats).evaluate_contract(contract)
        if report.passed:
            return stats, "", []
        failed = "; ".join(report.messages())
        if self.config.receive_action == "block":
            return None, failed, []
        return stats, "", [f"kept although the contract failed at the coordinator: {failed}"]

    def merge(self, contributions: list[Contribution]) -> MergeResult:
        rejected: dict[str, str] = {}
        kept: list[tuple[Contribution, Stats, list[str]]] = []
        for c in contributions:
            stats, reason, notes = self._check(c)
            if stats is None:
                rejected[c.client_id] = reason
            else:
                kept.append((c, stats, notes))
        tensors: dict[str, np.ndarray] = {}
        peers = []
        for i, (c, stats, notes) in enumerate(kept):
            arrays, meta = stats.to_tensors(f"peer{i}/")
            tensors |= arrays
            peers.append({"client_id": c.client_id, "dataset": c.dataset, "prefix": f"peer{i}/",
                          **meta, "n": stats.total.n, "cached": bool(c.outputs.get("cached")),
                          "filter": c.outputs.get("filter"),
                          "warnings": [*c.outputs.get("warnings", []), *notes]})
        if not kept:
            why = "; ".join(f"{cid}: {reason}" for cid, reason in rejected.items())
            raise SessionFailed(f"no contribution was left to merge ({why or 'none arrived'})",
                                "check the contract's rules: rules about pooled data belong in "
                                "merged_contract, which is checked on the merged statistics")
        return self._results(merge_all(s for _, s, _ in kept), tensors, peers, rejected)

    def _results(self, merged: Stats, tensors: dict[str, np.ndarray], peers: list[dict[str, Any]],
                 rejected: dict[str, str], **extra: Any) -> MergeResult:
        """Check the merged contract and describe the session's results."""
        merged_report = None
        if self.config.parsed_merged is not None:
            merged_report = StatsView(merged).evaluate_contract(self.config.parsed_merged)
            if not merged_report.passed and self.config.receive_action == "block":
                raise SessionFailed("the merged statistics fail the merged contract: "
                                    + "; ".join(merged_report.messages()),
                                    "the results are withheld; revise the merged contract or "
                                    "the datasets")
        arrays, meta = merged.to_tensors("merged/")
        tensors |= arrays
        results = {"merged": {**meta, "n": merged.total.n}, "peers": peers,
                   "contract": self.config.contract, "send_action": self.config.send_action,
                   "receive_action": self.config.receive_action,
                   "merged_contract": self.config.merged_contract,
                   "merged_report": merged_report.to_json() if merged_report else None, **extra}
        return MergeResult(results, tensors, rejected)

    def artefact_meta(self) -> dict[str, Any]:
        return {"package": "stats", "model_config": self.model_config,
                "data_config": self.data_config}
