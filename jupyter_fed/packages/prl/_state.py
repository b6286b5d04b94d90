"""A party's files between the steps of one linkage: keys, and what it sent mapped to its rows.

Steps run in separate, killable worker processes, so whatever one step must hand to the next —
the X25519 private key, the group key, the rows behind each sent token — is a file under the
runner's home, per principal, session and client, readable by the runner's user only (0600).
The folder is removed when the party's alignment is stored; folders of linkages that never
finished are removed after :data:`STALE_AFTER` seconds, the next time any linkage runs.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.alignment import SESSION_ID, principal_dir, write_private_file
from jupyter_fed.packages.base import StepContext

__all__ = ["PartyState"]

STALE_AFTER = 24 * 3600.0
"""Seconds after which an unfinished linkage's secrets are deleted."""


class PartyState:
    """The files of one party (``client``) of one linkage session, for the step's principal."""

    def __init__(self, ctx: StepContext, client: str) -> None:
        if ctx.cache_dir is None:
            raise ConfigError("record linkage runs only in a runner (it keeps keys between steps)",
                              "")
        if not SESSION_ID.match(ctx.session_id or ""):
            raise ConfigError("record linkage needs the session's id", "")
        root = principal_dir(ctx.cache_dir, ctx.principal, "prl-state")
        self.root = root
        self.folder = root / ctx.session_id / hashlib.sha256(client.encode()).hexdigest()[:24]

    def put(self, name: str, data: bytes) -> None:
        write_private_file(self.folder / name, data)

    def get(self, name: str, what: str) -> bytes:
        try:
            return (self.folder / name).read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"this runner holds no {what} for this linkage (an earlier step did "
                              "not run here, or the runner's files were cleared)",
                              "run the linkage again") from None

    def put_array(self, name: str, array: np.ndarray) -> None:
        from jupyter_fed.wire import encode

        self.put(name, encode({"a": np.ascontiguousarray(array)}))

    def get_array(self, name: str, what: str) -> np.ndarray:
        from jupyter_fed.wire import decode

        return decode(self.get(name, what))["a"]

    def clear(self) -> None:
        """Forget this party's secrets and maps (its alignment is kept elsewhere)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.folder.parent.rmdir()  # the session's folder, once no party is left in it
        except OSError:
            pass

    def sweep(self) -> None:
        """Remove the folders of this principal's linkages untouched for :data:`STALE_AFTER`."""
        if not self.root.is_dir():
            return
        limit = time.time() - STALE_AFTER
        for session in self.root.iterdir():
            try:
                if session.is_dir() and session.stat().st_mtime < limit:
                    shutil.rmtree(session, ignore_errors=True)
            except OSError:
                continue


def folder_of(cache_dir: Path, principal: str) -> Path:
    """Where a principal's unfinished linkages keep their files (for tests and audits)."""
    return principal_dir(cache_dir, principal, "prl-state")
