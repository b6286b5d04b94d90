"""A builder's own package, submitted to a runner as a code request.

``client.submit_code(runner, folder)`` sends the folder's source to the runner (where a custodian
reviews and approves it for named datasets) and to the coordinator (which runs its plan: it is
the builder's own process), and registers it in this kernel (for its ``model.py``). Sessions name
it by ``request.package`` — ``custom:<name>@<sha256>`` — so only the exact code approved runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_fed.packages.custom import CodeBundle, register_bundle

__all__ = ["CodeRequest", "submit_code"]


@dataclass
class CodeRequest:
    """A code request at one runner, as last seen (call :meth:`refresh` for news).

    Attributes
    ----------
    id, runner
        The request's id at ``runner``.
    package
        ``custom:<name>@<digest>``: the ``package_name`` of sessions that run this code.
    digest
        SHA-256 of the files (see :class:`~jupyter_fed.packages.custom.CodeBundle`).
    status
        ``pending``, ``approved`` or ``denied``.
    datasets
        Datasets the custodian approved the code for.
    note, reviewer
        The custodian's note and name, once decided.
    """

    id: str
    runner: str
    package: str
    digest: str
    status: str
    datasets: list[str] = field(default_factory=list)
    note: str = ""
    reviewer: str | None = None
    _backend: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: dict[str, Any], runner: str, backend: Any) -> CodeRequest:
        return cls(row["id"], runner, row["package"], row["digest"], row["status"],
                   list(row.get("datasets") or []), row.get("note") or "", row.get("reviewer"),
                   backend)

    def refresh(self) -> CodeRequest:
        """Ask the runner for the request's status now; returns ``self``, updated."""
        row = self._backend.runner_admin(self.runner, "GET", f"/v1/code/{self.id}")
        self.status, self.datasets = row["status"], list(row.get("datasets") or [])
        self.note, self.reviewer = row.get("note") or "", row.get("reviewer")
        return self


def submit_code(backend: Any, runner: str, source: str | Path | CodeBundle, *,
                name: str | None = None, description: str = "") -> CodeRequest:
    """Send ``source`` (a package folder, a torch module file, or a :class:`CodeBundle`) to
    ``runner`` and to the
    coordinator; see :meth:`jupyter_fed.client.Client.submit_code`."""
    bundle = source if isinstance(source, CodeBundle) else CodeBundle.from_path(source, name)
    bundle.manifest()  # a missing step or plan fails here, before anything is sent
    register_bundle(bundle)  # this kernel: session.model() rebuilds its model.py's class
    backend.add_code(bundle.name, bundle.files)  # the coordinator: it runs the plan
    row = backend.runner_admin(runner, "POST", "/v1/code", {
        "name": bundle.name, "files": bundle.files, "description": description,
        "digest": bundle.digest})
    return CodeRequest.from_row(row, runner, backend)
