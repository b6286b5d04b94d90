"""Where simulated clients' steps run: one host holds many clients' partitions in one process.

A host is what a runner's worker is, for many silos at once: it opens each partition as a
:class:`~jupyter_fed.simulation._data.PartitionDataset`, runs the package's real ``local.py`` step
with a :class:`~jupyter_fed.packages.base.StepContext` carrying the (simulated) runner's policy
and grant, and reports as a worker reports — JSON-able outputs with ``num_examples``, arrays as
safetensors stamped with the task's provenance, and a failure summarised by ``step_error`` (the
exception's type and place, never its text). Engines (``engines.py``) put hosts in this process,
in Ray actors or on Dask workers; torch is imported once per host process, however many clients
it serves.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from jupyter_fed.simulation._data import PartitionDataset

__all__ = ["HostSpec", "VirtualHost"]

HostSpec = dict[str, Any]
"""What a host needs (picklable, sent once to each host process): ``tables`` (source name →
arrow table), ``datasets`` (dataset name → ``[source, row positions or None for all rows,
catalog entry as JSON]``), ``principal`` and ``threads``."""


class VirtualHost:
    """Runs steps of the clients whose datasets it holds; one per host process (or thread)."""

    def __init__(self, spec: HostSpec) -> None:
        self.tables: dict[str, pa.Table] = spec["tables"]
        self.datasets: dict[str, list[Any]] = spec["datasets"]
        self.principal: str = spec.get("principal", "simulation")
        self.threads = int(spec.get("threads", 1))
        self.cache_dir = Path(tempfile.mkdtemp(prefix="jupyter-fed-sim-"))
        self._handles: dict[str, PartitionDataset] = {}

    def handle(self, name: str) -> PartitionDataset:
        from jupyter_fed.errors import NotFoundError
        from jupyter_fed.simulation._data import PartitionDataset
        from jupyter_fed.wire import DatasetInfo

        found = self._handles.get(name)
        if found is None:
            if name not in self.datasets:
                raise NotFoundError(f"no simulated dataset {name!r} on this host", "")
            source, rows, info = self.datasets[name]
            table = self.tables[source]
            if rows is not None:
                import pyarrow as pa

                table = table.take(pa.array(rows))
            found = self._handles[name] = PartitionDataset(DatasetInfo.model_validate(info),
                                                           table)
        return found

    def run(self, spec_json: str, payload: bytes, policy: dict[str, Any]
            ) -> tuple[dict[str, Any], bytes | None]:
        """Run one step; ``(report, arrays)`` as a runner's worker reports. Never raises."""
        from jupyter_fed.packages import get_package
        from jupyter_fed.packages.base import StepContext
        from jupyter_fed.runner.executor import step_error
        from jupyter_fed.wire import TaskSpec, TaskState, decode, encode

        spec = TaskSpec.model_validate_json(spec_json)
        started = time.perf_counter()
        report: dict[str, Any] = {}
        data: bytes | None = None
        try:
            step_fn = get_package(spec.package).load_step(spec.step)
            arrays: dict[str, np.ndarray] = decode(payload) if payload else {}
            datasets = {role: self.handle(name) for role, name in spec.datasets.items()}
            ctx = StepContext(task_id=spec.task_id, round=spec.round, policy=policy,
                              cache_dir=self.cache_dir, principal=self.principal,
                              session_id=spec.session_id, threads=self.threads)
            torch = sys.modules.get("torch")
            if torch is not None:  # many clients share this process's cores, as silos a host's
                torch.set_num_threads(self.threads)
            result = step_fn(ctx, datasets, dict(spec.params), arrays)
            outputs = dict(result.outputs)
            outputs["num_examples"] = int(result.num_examples)
            json.dumps(outputs)  # a step may return only JSON-able outputs
            if result.tensors:
                data = encode(result.tensors, {"task_id": spec.task_id,
                                               "session_id": spec.session_id,
                                               "round": str(spec.round)})
            report = {"state": TaskState.succeeded.value, "outputs": outputs,
                      "has_tensors": bool(result.tensors)}
        except Exception as exc:  # reported as a worker reports a failed step
            state, error = step_error(exc, spec)
            report = {"state": state.value, "error": error.to_body()}
            data = None
        report["elapsed"] = time.perf_counter() - started
        return report, data

    def warm(self) -> int:
        """Import the packages and torch now, before the first round is timed; returns the pid."""
        import os

        from jupyter_fed.packages import package_names

        package_names()
        try:  # torch, autograd and the optimiser's first use, as a runner's worker warms up
            import torch

            torch.set_num_threads(self.threads)
            net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(),
                                      torch.nn.Linear(4, 2))
            opt = torch.optim.SGD(net.parameters(), lr=0.1)
            torch.nn.functional.cross_entropy(net(torch.zeros(8, 4)),
                                              torch.zeros(8, dtype=torch.long)).backward()
            opt.step()
        except ImportError:  # pragma: no cover - analytics packages only
            pass
        return os.getpid()
