"""The runner's half of secure aggregation: keys, sealed shares, masking, and the reveal rule.

A secure step spans four tasks: the three built-in ones (keys, shares, unmask) run in the runner
process itself, on a thread (they read no row and take milliseconds, so they never wait behind a
package step in a worker), the masked package step in a worker process, which can be killed; what
a client must remember between them (its private keys, its self-mask seed,
the shares peers sealed for it, what it already revealed) lives in one file per (principal,
session, round, client) under ``<home>/secagg/`` (folder 0700, files 0600), changed only under
an exclusive lock. After the unmask step the file keeps no secret — only what was revealed, so
a retried request gets the same answer and a different one is refused — and every file is
deleted once older than ``secagg_ttl``.

What the runner checks, so a coordinator cannot unmask one client's values:

* the threshold is at least a strict majority of the roster (:func:`~jupyter_fed.privacy.
  secagg.threshold`), and the roster holds this client once, with its own keys;
* a round's masks are used once: a second masked vector under the same masks would give away
  the difference of the two;
* shares are revealed only by a client that sent its own masked vector, only for a survivor set
  of at least ``threshold`` clients it shared with, and never both kinds for one peer: the share
  of a surviving peer's self-mask seed, *or* (for a peer said to have dropped out) the share of
  its masking key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import StepResult
from jupyter_fed.privacy import secagg as sa
from jupyter_fed.wire import secagg as msg

__all__ = ["Masking", "RoundFiles", "files_for", "next_keys", "run_builtin"]

SHARE = struct.Struct(">H16s16s16s")
"""A sealed share's plaintext: holder index, seed share, the two halves of the key share."""


class RoundFiles:
    """The state files of one runner's secure-aggregation rounds, one per (principal, session,
    round, client), each read and written under an exclusive lock."""

    def __init__(self, folder: Path, principal: str, session: str, ttl: float) -> None:
        self.folder, self.principal, self.session, self.ttl = Path(folder), principal, session, ttl

    def path(self, p: msg.KeysParams) -> Path:
        key = "\x00".join((self.principal, self.session, p.id, p.client))
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"

    def sweep(self) -> None:
        """Delete the files of rounds older than the TTL (abandoned or long finished)."""
        limit = time.time() - self.ttl
        for f in self.folder.glob("*.json"):
            with contextlib.suppress(OSError):
                if f.stat().st_mtime < limit:
                    f.unlink()
                    f.with_suffix(".lock").unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self, p: msg.KeysParams) -> Iterator[dict[str, Any]]:
        """The round's state (``{}`` when new) under a lock; written back if changed."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path(p)
        fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = json.loads(path.read_text()) if path.exists() else {}
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                tmp = path.with_suffix(".tmp")
                with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                    json.dump(state, f)
                os.replace(tmp, path)
        finally:
            os.close(fd)


def _refuse(message: str) -> sa.SecAggError:
    return sa.SecAggError(message, "the coordinator sent a secure-aggregation request this "
                          "runner may not answer; nothing was revealed")


# -- the built-in steps ----------------------------------------------------------------------
def keys(files: RoundFiles, p: msg.KeysParams) -> dict[str, Any]:
    with files.locked(p) as st:
        if not st:
            c_sk, c_pk = sa.new_keypair()
            s_sk, s_pk = sa.new_keypair()
            st.update(status="keys", c_sk=sa.b64(c_sk), c_pk=sa.b64(c_pk), s_sk=sa.b64(s_sk),
                      s_pk=sa.b64(s_pk), seed=sa.b64(os.urandom(sa.BLOCK)))
        elif "c_pk" not in st:
            raise _refuse("this secure-aggregation round is over at this runner")
        return msg.KeysAnswer(c_pk=st["c_pk"], s_pk=st["s_pk"]).model_dump()


def shares(files: RoundFiles, p: msg.SharesParams) -> dict[str, Any]:
    roster = [m.model_dump() for m in p.roster]
    with files.locked(p) as st:
        if not st or "c_sk" not in st:
            raise _refuse("no keys for this secure-aggregation round (or it is over)")
        if st["status"] != "keys":
            if st.get("roster") == roster and st.get("threshold") == p.threshold:
                return {"ciphertexts": st["sent"]}  # a retried request: the same shares
            raise _refuse("this client already shared its secrets with another roster")
        n = len(roster)
        if p.threshold < sa.threshold(n):
            raise _refuse(f"threshold {p.threshold} for {n} clients is below a strict majority "
                          f"({sa.threshold(n)}): a coordinator could then unmask one client")
        mine = [i for i, m in enumerate(p.roster) if m.client == p.client]
        if len(mine) != 1 or p.roster[mine[0]].c_pk != st["c_pk"] or \
                p.roster[mine[0]].s_pk != st["s_pk"]:
            raise _refuse("the roster does not hold this client once, with its own keys")
        seed_shares = sa.split(sa.unb64(st["seed"], sa.BLOCK), p.threshold, n)
        key_shares = sa.split(sa.unb64(st["s_sk"], 32), p.threshold, n)
        sent = {}
        for j, member in enumerate(p.roster):
            plain = SHARE.pack(j + 1, seed_shares[j][0], *key_shares[j])
            key = sa.agree(sa.unb64(st["c_sk"], 32), sa.unb64(member.c_pk, 32), "share", p.id)
            sent[member.client] = sa.b64(sa.seal(key, plain, _aad(p.id, p.client, member.client)))
        st.update(status="shared", roster=roster, threshold=p.threshold, position=mine[0],
                  sent=sent)
        return {"ciphertexts": sent}


def unmask(files: RoundFiles, p: msg.UnmaskParams) -> dict[str, Any]:
    survivors = list(dict.fromkeys(p.survivors))
    with files.locked(p) as st:
        if not st:
            raise _refuse("no such secure-aggregation round at this runner")
        if st["status"] == "spent":
            if st["survivors"] == sorted(survivors):
                return st["answer"]  # a retried request: the same reveal
            _check_reveal_rule(st["revealed"], survivors, st["shared"])
            raise _refuse("this client already revealed its shares for another set of survivors")
        if st["status"] != "masked":
            raise _refuse("this client sent no masked vector in this round: it reveals nothing")
        shared = st["shared"]
        if p.client not in survivors or not set(survivors) <= set(shared):
            raise _refuse("the survivors must include this client and only clients it shared with")
        if len(survivors) < st["threshold"]:
            raise _refuse(f"{len(survivors)} survivor(s) are fewer than the threshold "
                          f"{st['threshold']}")
        dropped = [c for c in shared if c not in survivors]
        held = st["held"]
        answer = msg.UnmaskAnswer(index=st["position"] + 1,
                                  self_shares={c: [held[c]["seed"]] for c in survivors},
                                  key_shares={c: held[c]["key"] for c in dropped}).model_dump()
        revealed = {**dict.fromkeys(survivors, "self"), **dict.fromkeys(dropped, "key")}
        # Nothing secret stays: what was revealed, to answer a retry alike and refuse the rest.
        st.clear()
        st.update(status="spent", survivors=sorted(survivors), shared=shared, revealed=revealed,
                  answer=answer)
        return answer


def _check_reveal_rule(revealed: dict[str, str], survivors: list[str], shared: list[str]) -> None:
    """The classic SecAgg rule: never a peer's self-mask share and its key share both."""
    for peer in shared:
        kind = "self" if peer in survivors else "key"
        if revealed.get(peer, kind) != kind:
            was = "its self-mask seed" if revealed[peer] == "self" else "its masking key"
            raise _refuse(f"refusing to reveal shares of both secrets of {peer}: this client "
                          f"already revealed its share of {was} in this round")


def _aad(round_id: str, sender: str, recipient: str) -> bytes:
    return f"{round_id}\x00{sender}\x00{recipient}".encode()


def files_for(header: dict[str, Any]) -> RoundFiles:
    """The state files of the principal and session of a worker's ``run`` frame."""
    return RoundFiles(Path(header["secagg_dir"]), header["principal"],
                      header["spec"]["session_id"], float(header["secagg_ttl"]))


def run_builtin(step: str, params: dict[str, Any], header: dict[str, Any]) -> StepResult:
    """Run one built-in step (in the runner process, on a thread); the outputs are JSON, no
    tensors."""
    files = files_for(header)
    files.sweep()
    raw = params.get(msg.PARAM)
    if step == msg.KEYS:
        return StepResult(outputs=keys(files, msg.KeysParams.model_validate(raw)))
    if step == msg.SHARES:
        return StepResult(outputs=shares(files, msg.SharesParams.model_validate(raw)))
    if step == msg.UNMASK:
        answer = unmask(files, msg.UnmaskParams.model_validate(raw))
        if msg.NEXT in params:
            answer = {**answer, **_riding(shares, files, msg.SharesParams, params[msg.NEXT])}
        return StepResult(outputs=answer)
    raise ConfigError(f"no built-in step {step!r}", "")


def next_keys(files: RoundFiles, raw: Any) -> dict[str, Any]:
    """The next secure step's keys, made beside a masked step (``wire.secagg``): ``{NEXT:
    answer}``, or nothing when they cannot be made."""
    return _riding(keys, files, msg.KeysParams, raw)


def _riding(step: Any, files: RoundFiles, model: type[msg.KeysParams], raw: Any
            ) -> dict[str, Any]:
    """A step of the next secure step riding on this one: its answer under ``NEXT``, or nothing
    when this runner refuses it — the step it rides on must not fail for it (the coordinator
    then runs it in its own exchange, where a refusal is reported)."""
    try:
        return {msg.NEXT: step(files, model.model_validate(raw))}
    except (sa.SecAggError, ValueError):
        return {}


# -- masking a package step's result ---------------------------------------------------------
@dataclass
class Masking:
    """The masks of one client's vector in one round; made before the package step runs (so a
    bad request fails before any row is read), applied to its result after."""

    files: RoundFiles
    params: msg.MaskParams
    self_key: bytes
    pairwise: list[tuple[bytes, int]]

    @classmethod
    def begin(cls, files: RoundFiles, raw: Any) -> Masking:
        p = msg.MaskParams.model_validate(raw)
        files.sweep()
        with files.locked(p) as st:
            if not st or st.get("status") not in ("shared", "masking", "masked"):
                raise _refuse("this client has not shared its secrets in this round")
            if st["status"] != "shared":
                raise _refuse("this round's masks were used already: a second masked vector "
                              "under the same masks would give away the difference of the two")
            labels = [m["client"] for m in st["roster"]]
            if p.client not in p.shared or not set(p.shared) <= set(labels) or \
                    len(p.shared) < st["threshold"] or set(p.ciphertexts) != set(p.shared):
                raise _refuse("the clients to mask with must include this client, hold at least "
                              "the threshold, come from the roster and each send a share")
            c_sk = sa.unb64(st["c_sk"], 32)
            held = {}
            for sender in p.shared:
                member = st["roster"][labels.index(sender)]
                key = sa.agree(c_sk, sa.unb64(member["c_pk"], 32), "share", p.id)
                plain = sa.open_sealed(key, sa.unb64(p.ciphertexts[sender]),
                                       _aad(p.id, sender, p.client))
                index, seed, k1, k2 = SHARE.unpack(plain)
                if index != st["position"] + 1:
                    raise _refuse(f"the share from {sender} is for another holder")
                held[sender] = {"seed": sa.b64(seed), "key": [sa.b64(k1), sa.b64(k2)]}
            st.update(status="masking", shared=list(p.shared), held=held)
            s_sk, me = sa.unb64(st["s_sk"], 32), labels.index(p.client)
            pairwise = [(sa.agree(s_sk, sa.unb64(st["roster"][j]["s_pk"], 32), "mask", p.id),
                         1 if me < j else -1)
                        for j, label in enumerate(labels) if label in p.shared and j != me]
            self_key = sa.self_mask_key(sa.unb64(st["seed"], sa.BLOCK), p.id)
        return cls(files, p, self_key, pairwise)

    def apply(self, result: StepResult) -> StepResult:
        """``result`` with the named tensors masked (``uint64``, same names, shape + ``(limbs,)``:
        each value a fixed point of one or two words) and the ``secagg:*`` counters added; the
        clear values never leave this function."""
        p = self.params
        missing = [t for t in p.tensors if t not in result.tensors]
        if missing:
            raise ConfigError(f"the step returned no tensor(s) {', '.join(missing)} to sum "
                              "securely", "this is a bug in the package's plan or step")
        examples = int(result.num_examples)
        if examples < 0:
            raise ConfigError("the step reported a negative example count", "")
        scale = float(examples) if p.scale_by_examples else 1.0
        parts, clipped = [], 0
        for name in p.tensors:
            try:
                # float64 first: float32 weights × examples in float32 would lose 1e-7 of each
                q, c = sa.quantise(np.asarray(result.tensors[name], np.float64) * scale, p.clip,
                                   p.precision, p.limbs)
            except ValueError:
                raise ConfigError(f"tensor {name!r} to sum securely holds NaN or Inf", "") from None
            parts.append(q.ravel())
            clipped += c
        counters = ([sa.counter(examples, p.limbs)] if p.scale_by_examples else []) + \
            [sa.counter(clipped, p.limbs)]
        vector = np.concatenate([*parts, *(c.ravel() for c in counters)])
        masked = sa.add_masks(vector, self.self_key, self.pairwise)
        out = {k: v for k, v in result.tensors.items() if k not in p.tensors}
        start = 0
        for name, part in zip(p.tensors, parts, strict=True):
            out[name] = masked[start:start + len(part)].reshape(
                (*np.shape(result.tensors[name]), p.limbs))
            start += len(part)
        for name in ([msg.EXAMPLES] if p.scale_by_examples else []) + [msg.CLIPPED]:
            out[name] = masked[start:start + p.limbs]
            start += p.limbs
        with self.files.locked(p) as st:
            st["status"] = "masked"
        return StepResult(tensors=out, outputs=result.outputs, num_examples=result.num_examples)
