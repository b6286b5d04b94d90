"""The executor's side of custom code: what must hold before a step of it is queued, the sandbox
it is given, and what happens to its result and its failures.

Policy (checked in :meth:`CustomCode.prepare`, before any row is read):

- the package name is ``custom:<name>@<digest>``: a request by **this principal** for exactly
  that digest must be **approved** for **every dataset** the step reads (``CodeStore.authorize``);
- each dataset's policy must allow it (``allowed_packages`` unset, or listing ``custom``,
  ``custom:<name>`` or the full name), must not ``require_dp`` (no proof that custom code is
  differentially private), and must not be Dask-backed (that needs the network);
- secure aggregation's masking is not offered to custom steps (it reads key material the sandbox
  must not see);
- what a step returns passes the same checks as any package's (JSON outputs, named arrays with
  provenance), and is checked again by the runner after the sandbox ended.

Every custom step's outcome is written to the audit log, so the custodian sees each run of the
code they approved, and each violation.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_fed.errors import PermissionDenied
from jupyter_fed.packages.custom import is_custom
from jupyter_fed.packages.registry import PackageSpec
from jupyter_fed.runner.accounts import Principal
from jupyter_fed.runner.audit import AuditLog
from jupyter_fed.runner.custom_code import CodeStore, Decision
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire import DatasetInfo, TaskSpec
from jupyter_fed.wire import secagg as secagg_msg

__all__ = ["CustomCode", "CustomStep"]

log = logging.getLogger("jupyter_fed.runner")


@dataclass(frozen=True)
class CustomStep:
    """One approved custom step on its way to a sandboxed worker."""

    decision: Decision
    package: PackageSpec


class CustomCode:
    """Code requests (``codes``) and the executor's hooks for running approved code."""

    def __init__(self, settings: RunnerSettings, store: RunnerStore) -> None:
        self.settings = settings
        self.codes = CodeStore(store)
        self.audit = AuditLog(store)

    def resolve(self, spec: TaskSpec, principal: Principal) -> CustomStep | None:
        """``None`` for a built-in package; else the approved code, or ``PermissionDenied``."""
        if not is_custom(spec.package):
            return None
        principal.require("run_custom_code")
        decision = self.codes.authorize(spec.package, principal.name,
                                        sorted(set(spec.datasets.values())))
        if secagg_msg.PARAM in spec.params:
            raise PermissionDenied("secure aggregation is not available to custom code",
                                   "run the session without secure aggregation")
        return CustomStep(decision, decision.bundle.spec())

    def check(self, step: CustomStep, handles: dict[str, tuple[DatasetInfo, Path]],
              policies: dict[str, Any]) -> None:
        for role, (info, _path) in handles.items():
            if policies[role].require_dp:
                raise PermissionDenied(f"dataset {info.name!r} only allows differentially "
                                       "private steps, and custom code is not proven to be",
                                       "use a built-in DP package on this dataset")
            if info.backend is not None:
                raise PermissionDenied(f"dataset {info.name!r} is read by a Dask cluster, which "
                                       "custom code's sandbox cannot reach",
                                       "approve the code for a dataset on local files")

    def header(self, step: CustomStep, key: str, handles: dict[str, tuple[DatasetInfo, Path]],
               header: dict[str, Any]) -> dict[str, Any]:
        """The sandbox's part of the worker's ``run`` frame; moves the step's result into a
        private folder (the runner moves it to the results folder when the step succeeded)."""
        tmp = self.settings.home / "sandbox" / hashlib.sha256(key.encode()).hexdigest()[:32]
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, mode=0o700)
        bundle = step.decision.bundle
        box = {"code_id": step.decision.id, "name": bundle.name, "files": bundle.files,
               "digest": bundle.digest, "tmp": str(tmp),
               "read": sorted({str(path) for _info, path in handles.values()}),
               "sensitive": [str(self.settings.home), *(str(r) for r in self.settings.data_roots)],
               "result_path": header["result_path"]}
        header["result_path"] = str(tmp / "result.safetensors")
        header["cache_dir"] = str(tmp)
        header["data_roots"] = []
        return box

    def finish(self, header: dict[str, Any], principal: str, report: dict[str, Any]) -> None:
        """A custom step ended (``report`` as its worker sent it, or made up by the runner when
        the worker was stopped): check and move its result, audit its outcome, clean up."""
        box, spec = header["custom"], header["spec"]
        tmp, target = Path(box["tmp"]), Path(box["result_path"])
        if report.get("state") == "succeeded" and report.get("has_tensors"):
            try:
                from jupyter_fed.wire.tensors import decode, metadata

                data = (tmp / "result.safetensors").read_bytes()
                decode(data)
                if metadata(data).get("task_id") != spec["task_id"]:
                    raise ValueError("result without this task's provenance")
                target.write_bytes(data)
            except (OSError, ValueError) as exc:
                log.error("custom step %s returned an unusable result: %s", spec["task_id"], exc)
                report.update(state="failed", has_tensors=False, error={
                    "code": "step_failed", "message": "the custom step's result was not a valid "
                    "array file", "hint": "return arrays in StepResult.tensors"})
        shutil.rmtree(tmp, ignore_errors=True)
        error = report.get("error") or {}
        code = error.get("code", "")
        self.audit.record(principal=principal, method="STEP", path=f"/v1/tasks/{spec['task_id']}",
                          dataset=",".join(sorted(set(spec["datasets"].values()))),
                          package=spec["package"][:200], step=spec["step"],
                          params_digest=box["code_id"],
                          status={"succeeded": 200, "cancelled": 409}.get(
                              str(report.get("state")), 403 if code == "sandbox_violation"
                              else 500),
                          outcome="ok" if report.get("state") == "succeeded" else
                          "denied" if code == "sandbox_violation" else "error")
