"""Coordinator-side base for analytics packages: one step at every runner, one merge.

EDA and statistics sessions have no rounds: each runner computes its (noise-protected, policy-
checked) aggregates once, and the coordinator merges them into a result the kernel explores.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jupyter_fed.packages._io import Artefact, Payload, SecureSum, SessionIO
from jupyter_fed.packages._plan import Plan


@dataclass
class Contribution:
    """One runner's answer to the compute step."""

    client_id: str
    dataset: str
    outputs: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class MergeResult:
    """What the session stores: JSON results, arrays, and per-client notes for the log."""

    results: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    """client id → reason a contribution was left out (e.g. a receive-side contract rule)."""


class AnalyticsPlan(Plan):
    """One ``compute`` step at every client, then one merge: EDA, statistics, and the like.

    Subclasses implement :meth:`merge`; the session's artefact is the merged results, and
    ``num_rounds`` is ignored (always one step).
    """

    step = "compute"

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 1) -> None:
        super().__init__(model_config, data_config, 1)

    async def prepare(self, io: SessionIO) -> None:
        """Before the compute step: settle what the runners must agree on (e.g. which columns
        are binary, from each runner's registered schema). Nothing by default."""

    def step_params(self, dataset: str) -> dict[str, Any]:
        """Parameters for the step at the runner holding ``dataset``."""
        return {"model_config": self.model_config, "data_config": self.data_config,
                "dataset": dataset}

    @abc.abstractmethod
    def merge(self, contributions: list[Contribution]) -> MergeResult:
        """The session's results from every contribution (leave out, with a reason, what fails)."""

    def secure_sum(self) -> SecureSum | None:
        """The compute step's tensors to sum securely (then :meth:`merge_total` merges their
        total and no contribution's values reach the plan), or ``None``."""
        return None

    def merge_total(self, total: dict[str, np.ndarray], contributions: list[Contribution]
                    ) -> MergeResult:
        """The session's results from the secure total (contributions carry outputs only)."""
        raise NotImplementedError("a plan that asks for a secure sum merges its total")

    async def run(self, io: SessionIO) -> None:
        started = time.perf_counter()
        await self.prepare(io)
        clients = {c.client_id: c for c in io.clients}
        found = await io.step(self.step, {cid: Payload(self.step_params(c.datasets["data"]))
                                          for cid, c in clients.items()}, round=1,
                              secure=self.secure_sum())
        contributions = [Contribution(a.client_id, clients[a.client_id].datasets["data"],
                                      a.outputs, a.tensors) for a in found]
        for a in found:
            for note in a.outputs.get("warnings", []):
                io.log("warning", f"{a.client_id}: {note}", a.client_id)
        merged = self.merge(contributions) if found.total is None else \
            self.merge_total(dict(found.total), contributions)
        for cid, reason in merged.rejected.items():
            io.log("warning", f"contribution of {cid} left out: {reason}", cid)
        info = {"duration": time.perf_counter() - started, "local_seconds": found.slowest,
                "clients": [c.client_id for c in contributions], "dropped": found.dropped,
                "rejected": merged.rejected, "analytics": True}
        meta = {**self.artefact_meta(), "results": merged.results, "rejected": merged.rejected}
        await io.commit(1, artefact=Artefact(merged.tensors, meta), info=info, done=True)
        io.log("info", f"completed with {len(contributions) - len(merged.rejected)} "
               "contribution(s)")
