"""A party's state between the steps of a vfl_gbm session: a private file at the party.

What a party keeps there never leaves it: the label party's private key, gradients, raw scores
and trees; a passive party's bin edges and the thresholds of the splits on its own columns (the
split values stay where the data is). As for splitnn, the file lives under the runner's home,
per principal, session and client, readable by the runner's user only (0600), written
atomically, as safetensors (arrays and JSON, never pickle); an ``fcntl`` lock serialises one
party's steps. Prediction sessions open the training session's file read-only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.alignment import SESSION_ID, principal_dir, write_private_file
from jupyter_fed.packages.base import StepContext

__all__ = ["GbmPartyFile"]


class GbmPartyFile:
    """The state file of one party (``client``) of one session, for the step's principal."""

    def __init__(self, ctx: StepContext, client: str, session_id: str | None = None) -> None:
        sid = session_id or ctx.session_id
        if ctx.cache_dir is None:
            raise ConfigError("vfl_gbm runs only in a runner (each party keeps its trees there)",
                              "")
        if not SESSION_ID.match(sid or ""):
            raise ConfigError(f"{sid!r} is not a session id", "")
        folder = principal_dir(ctx.cache_dir, ctx.principal, "vfl_gbm") / sid
        self.folder = folder / hashlib.sha256(client.encode()).hexdigest()[:24]
        self.path = self.folder / "state.safetensors"
        self.session_id = sid

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.folder / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def read(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from jupyter_fed.wire import decode
        from jupyter_fed.wire.tensors import metadata

        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"this runner holds no vfl_gbm state of session {self.session_id} "
                              "for this party and user",
                              "train with the same user's token and client name, and pass that "
                              "session's id") from None
        return decode(data), json.loads(metadata(data).get("party") or "{}")

    def write(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        from jupyter_fed.wire import encode

        write_private_file(self.path, encode({k: np.ascontiguousarray(v)
                                              for k, v in arrays.items()},
                                             {"party": json.dumps(meta)}))
