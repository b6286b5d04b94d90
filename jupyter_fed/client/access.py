"""Asking a custodian for access: requests filed from the notebook, and their answers.

A request goes to the runner with the builder's own token (through the coordinator, which adds
nothing); the runner's custodian decides. ``AccessRequest.wait`` polls for the decision, so a
notebook can block on "approved" the way it blocks on a session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_fed.errors import FedError


class AccessDenied(FedError):
    """The custodian denied the request (their note says why)."""

    code = "access_denied"
    status = 403


@dataclass
class AccessRequest:
    """One request to one runner's custodian; ``refresh()`` / ``wait()`` read its status."""

    runner: str
    info: dict[str, Any]
    _backend: Any = field(repr=False)

    @property
    def id(self) -> str:
        return self.info["request_id"]

    @property
    def status(self) -> str:
        """``pending``, ``approved``, ``denied`` or ``withdrawn``."""
        return self.info["status"]

    def refresh(self) -> AccessRequest:
        mine = self._backend.runner_admin(self.runner, "GET", "/v1/requests/self")
        self.info = next((r for r in mine if r["request_id"] == self.id), self.info)
        return self

    def wait(self, timeout: float = 3600, poll: float = 2.0) -> AccessRequest:
        """Block until the custodian decides; raises ``AccessDenied`` on a denial and
        ``TimeoutError`` when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while self.refresh().status == "pending":
            if time.monotonic() >= deadline:
                raise TimeoutError(f"request {self.id} at {self.runner} is still pending")
            time.sleep(min(poll, max(deadline - time.monotonic(), 0.01)))
        if self.status == "denied":
            raise AccessDenied(f"request {self.id} for {self.info['dataset']!r} at {self.runner} "
                               f"was denied{': ' + self.info['note'] if self.info['note'] else ''}",
                               "talk to the custodian, or file a narrower request")
        return self

    def withdraw(self) -> AccessRequest:
        self.info = self._backend.runner_admin(self.runner, "POST",
                                               f"/v1/requests/{self.id}/withdraw")
        return self

    def __str__(self) -> str:
        i = self.info
        what = ", ".join(i["packages"]) if i.get("packages") else "any package"
        eps = f", epsilon {i['epsilon']:g}" if i.get("epsilon") is not None else ""
        note = f" — {i['note']}" if i.get("note") else ""
        return (f"request {self.id} at {self.runner}: {i['dataset']} ({what}{eps}) "
                f"{self.status}{note}")

    def _repr_html_(self) -> str:
        import html

        colour = {"approved": "#2e7d32", "denied": "#c62828", "pending": "#ef6c00"}.get(
            self.status, "#555")
        return (f"<div class='jf-access-request'>{html.escape(str(self))} "
                f"<b style='color:{colour}'>{html.escape(self.status)}</b></div>")


__all__ = ["AccessDenied", "AccessRequest"]
