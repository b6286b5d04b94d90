"""A party's model between the steps of a splitnn session: a file at the party, under a lock.

Why a file rather than a payload: a party's bottom network (and, at the label party, the head)
describes its own rows and must not reach the coordinator; steps run in separate, killable
worker processes, so what one step leaves for the next is written under the runner's home —
per principal, session and client, readable by the runner's user only (0600), atomically. An
``fcntl`` lock serialises steps of one party (a retry racing the original); the file records the
number of the last exchange it applied and that exchange's arrays, so a step the coordinator
retries after a lost answer gets the same answer instead of applying its gradients twice.

Prediction sessions open the training session's file read-only.
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

__all__ = ["PartyFile", "pack_optimizer", "unpack_optimizer"]


class PartyFile:
    """The model file of one party (``client``) of one session, for the step's principal."""

    def __init__(self, ctx: StepContext, client: str, session_id: str | None = None,
                 kind: str = "splitnn") -> None:
        sid = session_id or ctx.session_id
        if ctx.cache_dir is None:
            raise ConfigError(f"{kind} runs only in a runner (each party keeps its model there)",
                              "")
        if not SESSION_ID.match(sid or ""):
            raise ConfigError(f"{sid!r} is not a session id", "")
        folder = principal_dir(ctx.cache_dir, ctx.principal, kind) / sid
        self.folder = folder / hashlib.sha256(client.encode()).hexdigest()[:24]
        self.path = self.folder / "model.safetensors"
        self.session_id = sid
        self.kind = kind

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.folder / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self, what: str = "model") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from jupyter_fed.wire import decode
        from jupyter_fed.wire.tensors import metadata

        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"this runner holds no {self.kind} {what} of session "
                              f"{self.session_id} for this party and user",
                              "train with the same user's token and client name, and pass that "
                              "session's id") from None
        return decode(data), json.loads(metadata(data).get("party") or "{}")

    def write(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        from jupyter_fed.wire import encode

        write_private_file(self.path, encode({k: np.ascontiguousarray(v)
                                              for k, v in arrays.items()},
                                             {"party": json.dumps(meta)}))


def pack_optimizer(opt: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """An optimiser's state as named arrays plus JSON (never pickle): momentum buffers, Adam's
    moments and step counts."""
    state = opt.state_dict()
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, slots in state["state"].items():
        for key, value in slots.items():
            if hasattr(value, "detach"):
                arrays[f"opt.{idx}.{key}"] = value.detach().cpu().numpy().copy()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return arrays, {"param_groups": state["param_groups"], "scalars": scalars}


def unpack_optimizer(opt: Any, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    import torch

    if not meta:
        return
    state: dict[int, dict[str, Any]] = {}
    for name, value in arrays.items():
        if name.startswith("opt."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = torch.from_numpy(np.array(value))
    for idx, slots in (meta.get("scalars") or {}).items():
        state.setdefault(int(idx), {}).update(slots)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
