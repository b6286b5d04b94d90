"""A party's state between the steps of a vfl_gbm session: splitnn's private file, own folder.

What a party keeps there never leaves it: the label party's private key, gradients, raw scores
and trees; a passive party's bin edges and the thresholds of the splits on its own columns (the
split values stay where the data is). Prediction sessions open the training session's file.
"""

from __future__ import annotations

import hashlib

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.alignment import SESSION_ID, principal_dir
from jupyter_fed.packages.base import StepContext
from jupyter_fed.packages.splitnn._party import PartyFile

__all__ = ["GbmPartyFile"]


class GbmPartyFile(PartyFile):
    """:class:`~jupyter_fed.packages.splitnn._party.PartyFile` under ``vfl_gbm/``."""

    def __init__(self, ctx: StepContext, client: str, session_id: str | None = None) -> None:
        sid = session_id or ctx.session_id
        if ctx.cache_dir is None:
            raise ConfigError("vfl_gbm runs only in a runner (each party keeps its trees there)",
                              "")
        if not SESSION_ID.match(sid or ""):
            raise ConfigError(f"{sid!r} is not a session id", "")
        folder = principal_dir(ctx.cache_dir, ctx.principal, "vfl_gbm") / sid
        self.folder = folder / hashlib.sha256(client.encode()).hexdigest()[:24]
        self.path = self.folder / "model.safetensors"
        self.session_id = sid
