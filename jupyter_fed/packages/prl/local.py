"""Runner half of prl (keyed-hash protocol): keys, the group key, tokens, and the alignment.

``keys``
    A fresh X25519 key pair for this session; only the public key leaves.
``share``
    At the leader (the first client): a random 32-byte group key, sealed (AES-GCM) for each other
    party under the key it shares with that party by X25519. The coordinator relays the sealed
    keys; it never holds a private key, so it cannot open them.
``tokens``
    Open the group key; HMAC-SHA256 every normalised id under a key derived from it; send the
    distinct tokens sorted (rows and their order stay here). Duplicates link once (first row);
    missing ids never link.
``align``
    Receive the positions, within what this party sent, of the intersection in aligned order;
    refuse an intersection smaller than the dataset's minimum rows; stage the aligned rows.
``commit``
    Once every party staged the same alignment (the coordinator compares their digests): store
    the aligned row positions with the dataset's version as it was when the ids were read (see
    :mod:`jupyter_fed.packages.alignment`), and forget the session's keys. A linkage refused
    anywhere thus leaves no alignment anywhere.

No id, token-to-row map or key ever leaves the runner, nor appears in an error.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages.alignment import (
    Alignment,
    DatasetVersion,
    load_alignment,
    save_alignment,
)
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.prl._crypto import (
    derive,
    new_keypair,
    open_sealed,
    pairwise_key,
    public_key_bytes,
    seal,
)
from jupyter_fed.packages.prl._encode import Encoding, encode_dataset
from jupyter_fed.packages.prl._state import PartyState
from jupyter_fed.packages.prl.config import ClientIds, FuzzyConfig

__all__ = ["align", "check_columns", "client_of", "commit", "digest_of", "keys", "linked_roles",
           "privacy_cost", "remember_version", "share", "stage_alignment", "tokens"]


def client_of(params: dict[str, Any]) -> str:
    client = params.get("client")
    if not isinstance(client, str) or not client:
        raise ConfigError("the step's parameters name no client", "the coordinator names it")
    return client


def check_columns(datasets: dict[str, DatasetHandle], ids: ClientIds) -> None:
    """Every id and fuzzy column exists and was registered as an identifier (``--id-column``):
    the custodian, not the caller, decides which columns identify people."""
    for handle in datasets.values():
        roles = {c.name: c.role for c in handle.info.columns}
        for column in [*ids.id_columns, *ids.fuzzy_columns]:
            if column not in roles:
                raise ConfigError(f"dataset {handle.info.name!r} has no column {column!r}",
                                  "list the dataset's id columns in data_config")
            if roles[column] != "id":
                raise PermissionDenied(f"column {column!r} of dataset {handle.info.name!r} is "
                                       "not registered as an identifier",
                                       "ask the custodian to register it with --id-column")


def keys(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    """A fresh X25519 key pair for this party and session: the public half is returned."""
    client = client_of(params)
    check_columns(datasets, ClientIds.model_validate(params.get("ids") or {}))
    state = PartyState(ctx, client)
    state.sweep()
    private, public = new_keypair()
    state.put("x25519", private)
    return StepResult(outputs={"public_key": public.hex(),
                               "rows": {role: h.num_rows for role, h in datasets.items()}})


def linked_roles(datasets: dict[str, DatasetHandle], params: dict[str, Any]) -> list[str]:
    """The dataset roles this linkage links (``train``, and ``test`` when every party has one)."""
    wanted = params.get("roles")
    return [r for r in sorted(datasets) if not isinstance(wanted, list) or r in wanted]


def _aad(session: str, leader: str, peer: str) -> bytes:
    return f"group-key|{session}|{leader}|{peer}".encode()


def share(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """The leader's step: a random group key, sealed for every other party."""
    client = client_of(params)
    state = PartyState(ctx, client)
    private = state.get("x25519", "private key")
    group = os.urandom(32)
    state.put("group", group)
    sealed = {}
    for peer, public in dict(params.get("peers") or {}).items():
        wrap = pairwise_key(private, public_key_bytes(public), "wrap", ctx.session_id, client, peer)
        sealed[peer] = seal(wrap, group, _aad(ctx.session_id, client, peer)).hex()
    return StepResult(outputs={"sealed": sealed})


def group_key(ctx: StepContext, state: PartyState, client: str, params: dict[str, Any]) -> bytes:
    """The group key: the leader's own, or opened from what the leader sealed for this party."""
    leader = str(params.get("leader") or "")
    if leader == client:
        return state.get("group", "group key")
    try:
        blob = bytes.fromhex(str(params.get("sealed") or ""))
    except ValueError:
        blob = b""
    wrap = pairwise_key(state.get("x25519", "private key"),
                        public_key_bytes(params.get("leader_public", "")), "wrap", ctx.session_id,
                        leader, client)
    return open_sealed(wrap, blob, _aad(ctx.session_id, leader, client), "the sealed group key")


def encoding(key: bytes, ids: ClientIds, fuzzy: FuzzyConfig | None,
             bloom_key: bytes | None = None) -> Encoding:
    columns = (*ids.id_columns, *ids.fuzzy_columns)
    bloom = None if fuzzy is None or bloom_key is None else \
        (bloom_key, fuzzy.bits, fuzzy.hashes, fuzzy.ngram)
    return Encoding(key, columns, tuple(tuple(ids.steps(c)) for c in columns),
                    len(ids.id_columns), tuple(ids.missing_values), bloom)


def tokens(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
           tensors: dict[str, np.ndarray]) -> StepResult:
    """Tokens of every dataset role: sorted distinct HMACs (and Bloom filters when fuzzy)."""
    client = client_of(params)
    ids = ClientIds.model_validate(params.get("ids") or {})
    fuzzy = FuzzyConfig.model_validate(params["fuzzy"]) if params.get("fuzzy") else None
    check_columns(datasets, ids)
    state = PartyState(ctx, client)
    group = group_key(ctx, state, client, params)
    enc = encoding(derive(group, "tokens", ctx.session_id), ids, fuzzy,
                   derive(group, "bloom", ctx.session_id))
    out: dict[str, np.ndarray] = {}
    counts: dict[str, dict[str, int]] = {}
    roles = linked_roles(datasets, params)
    for i, role in enumerate(roles):
        found = encode_dataset(ctx, datasets[role], enc, f"hashing {role} ids",
                               (i / len(roles), (i + 1) / len(roles)))
        state.put_array(f"{role}.rows", found.rows)
        state.put_array(f"{role}.tokens", found.tokens)
        remember_version(state, role, datasets[role])
        out[role] = found.tokens
        if found.bloom is not None:
            out[f"{role}_bloom"] = found.bloom
        counts[role] = {"n_records": found.n_records, "n_missing": found.n_missing,
                        "n_duplicates": found.n_duplicates, "n_sent": len(found.tokens)}
    return StepResult(tensors=out, outputs={"counts": counts},
                      num_examples=sum(c["n_sent"] for c in counts.values()))


def digest_of(session: str, tokens: np.ndarray) -> str:
    """The alignment's fingerprint: a hash of its tokens in aligned order (equal at every party
    of a correct linkage, opaque to everyone)."""
    h = hashlib.sha256(f"jupyter-fed prl alignment v1|{session}|".encode())
    h.update(np.ascontiguousarray(tokens, dtype=np.uint8).tobytes())
    return h.hexdigest()


def _repeats(positions: np.ndarray, size: int) -> bool:
    """Whether a position (all within ``0..size-1``) occurs twice: O(n), unlike sorting."""
    seen = np.zeros(size, dtype=bool)
    seen[positions] = True
    return int(seen.sum()) != len(positions)


def _positions(found: np.ndarray | None, sent: int, role: str) -> np.ndarray:
    if found is None or found.ndim != 1 or found.dtype != np.int64:
        raise ConfigError(f"the {role} alignment is not a list of positions",
                          "the coordinator sends int64 positions")
    if len(found) and (int(found.min()) < 0 or int(found.max()) >= sent
                       or _repeats(found, sent)):
        raise ConfigError(f"the {role} alignment names positions this party never sent, or one "
                          "twice", "the relay is not faithful; run the linkage again")
    return found


def remember_version(state: PartyState, role: str, handle: DatasetHandle) -> None:
    """The dataset's version as its ids are read: what its alignment will be valid for."""
    version = DatasetVersion.of(handle.info.registered_at, handle.path, handle.num_rows)
    state.put(f"{role}.version", json.dumps(asdict(version)).encode())


def stage_alignment(ctx: StepContext, state: PartyState, datasets: dict[str, DatasetHandle],
                    linked: dict[str, tuple[np.ndarray, str]]) -> dict[str, Any]:
    """Check every role's intersection against its dataset's minimum rows, and keep the aligned
    rows aside until :func:`commit` (when every party has staged the same alignment).

    ``linked``: role → (dataset rows in aligned order, digest). A refusal here, at any party,
    fails the session before any party stores an alignment.
    """
    from jupyter_fed.privacy import release_minimum

    for role, (rows, _digest) in linked.items():
        handle = datasets[role]
        minimum = release_minimum(ctx.policy.get(role) or {}, handle.info.num_columns)
        if len(rows) < minimum:
            raise PermissionDenied(f"the intersection of dataset {handle.info.name!r} with the "
                                   f"other parties has fewer than the {minimum} rows its runner "
                                   "requires behind any result: no alignment is stored",
                                   "link datasets that share more people")
    out = {}
    for role, (rows, digest) in linked.items():
        state.put_array(f"{role}.aligned", np.asarray(rows, dtype=np.int64))
        state.put(f"{role}.digest", digest.encode())
        out[role] = {"n_records": datasets[role].num_rows, "n_overlapped_records": len(rows),
                     "digest": digest}
    return out


def commit(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
           tensors: dict[str, np.ndarray]) -> StepResult:
    """Store the staged alignments (0600, per principal) and forget the linkage's keys."""
    client = client_of(params)
    state = PartyState(ctx, client)
    roles = linked_roles(datasets, params)
    if not state.folder.exists() and all(
            load_alignment(ctx.cache_dir, ctx.principal, ctx.session_id,  # type: ignore[arg-type]
                           datasets[r].info.name) is not None for r in roles):
        return StepResult()  # a retry of a commit that finished
    staged = {}
    for role in roles:
        handle = datasets[role]
        version = DatasetVersion(**json.loads(state.get(f"{role}.version", "dataset version")))
        now = DatasetVersion.of(handle.info.registered_at, handle.path, handle.num_rows)
        if version.changes(now):
            raise ConfigError(f"dataset {handle.info.name!r} changed while it was being linked",
                              "run the linkage again")
        staged[role] = Alignment(ctx.session_id, handle.info.name, role,
                                 state.get_array(f"{role}.aligned", "staged alignment"), version,
                                 state.get(f"{role}.digest", "staged digest").decode(),
                                 str(params.get("protocol") or "keyed_hash"))
    for alignment in staged.values():
        save_alignment(ctx.cache_dir, ctx.principal, alignment)  # type: ignore[arg-type]
    state.clear()
    return StepResult(num_examples=sum(a.size for a in staged.values()))


def align(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """Map the coordinator's positions to rows and stage them (after the minimum-rows check)."""
    client = client_of(params)
    state = PartyState(ctx, client)
    linked = {}
    for role in linked_roles(datasets, params):
        if role not in tensors:
            raise ConfigError(f"the coordinator sent no {role} alignment", "run the linkage again")
        rows = state.get_array(f"{role}.rows", "rows of the sent tokens")
        sent = state.get_array(f"{role}.tokens", "sent tokens")
        pos = _positions(tensors[role], len(rows), role)
        linked[role] = (rows[pos], digest_of(ctx.session_id, sent[pos]))
    out = stage_alignment(ctx, state, datasets, linked)
    return StepResult(outputs={"linked": out},
                      num_examples=sum(v["n_overlapped_records"] for v in out.values()))


def privacy_cost(step: str, params: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """Linkage spends no epsilon: what leaves is opaque tokens and, at the end, the size of the
    intersection (held to the dataset's minimum rows). A dataset that requires differential
    privacy therefore refuses it, like any exact release."""
    from jupyter_fed.privacy.accounting import PrivacyCost

    return {role: PrivacyCost(0.0) for role in facts}
