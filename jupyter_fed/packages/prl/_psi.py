"""Runner half of prl's ``psi`` protocol: two-party ECDH private set intersection (openmined-psi).

For parties that do not trust the coordinator with even opaque tokens. The coordinator relays
only elliptic-curve-blinded messages and ciphertext:

1. ``psi_keys`` — each party: an X25519 key pair (public half out) and its row counts.
2. ``psi_prepare`` — both at once. Each derives the pairwise key K with the other party by X25519
   (the coordinator relayed the public keys and learns nothing) and turns its normalised ids into
   tokens HMAC_K(id): PSI runs over tokens, so not even a forged PSI query can test a guessed id
   without K. The *server* (the party with more rows) sends openmined-psi's set-up message (its
   tokens blinded by its secret scalar, sorted); the *client* sends its request (its tokens
   blinded by its own scalar) with a MAC under K.
3. ``psi_serve`` — the server checks the MAC, blinds the request once more (one request per
   session: a second, different one is refused) and returns the response.
4. ``psi_intersect`` — the client learns which of its tokens the server holds (and nothing about
   the others), orders the intersection by token, checks its size against its dataset's minimum
   rows, stages its alignment, and seals the intersection's tokens (AES-GCM under K) for the
   server.
5. ``psi_align`` — the server opens them, finds each among its own tokens (every one must be
   there), checks the minimum, and stages its alignment in the same order.
6. ``commit`` (shared with the keyed-hash protocol) — both store their alignments.

Neither party learns anything about the other's ids outside the intersection; the server learns
the intersection only through step 4, which holds only ids it has. The elliptic-curve work runs on
``psi_threads`` threads (openmined-psi releases the GIL; each thread has its own PSI object, from
the same key, as one object is not thread-safe), and the two parties blind their sets at the same
time, which is why this is faster than calling the library in one process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.prl._crypto import derive, open_sealed, pairwise_key, public_key_bytes, seal
from jupyter_fed.packages.prl._encode import encode_dataset
from jupyter_fed.packages.prl._state import PartyState
from jupyter_fed.packages.prl.config import ClientIds
from jupyter_fed.packages.prl.local import (
    check_columns,
    client_of,
    digest_of,
    encoding,
    keys,
    linked_roles,
    remember_version,
    stage_alignment,
)

__all__ = ["intersect", "keys", "prepare", "psi_align", "serve"]

T = TypeVar("T")


def _psi() -> Any:
    try:
        import private_set_intersection.python as psi
    except ImportError:
        raise ConfigError("the psi protocol needs openmined-psi on every runner",
                          "pip install 'jupyter-fed[psi]' on the runners, or use "
                          "protocol: keyed_hash") from None
    return psi


def _threads(params: dict[str, Any]) -> int:
    given = params.get("threads")
    if isinstance(given, int) and 1 <= given <= 16:
        return given
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))


def _chunks(items: Sequence[T], n: int) -> list[Sequence[T]]:
    size = max(1, -(-len(items) // max(n, 1)))
    return [items[i:i + size] for i in range(0, len(items), size)] or [items]


def _parallel(fn: Callable[[Sequence[T]], Any], items: Sequence[T], threads: int) -> list[Any]:
    parts = _chunks(items, threads)
    if len(parts) == 1:
        return [fn(parts[0])]
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(fn, parts))


def _bytes(array: np.ndarray | None, what: str) -> bytes:
    if array is None or array.dtype != np.uint8 or array.ndim != 1:
        raise ConfigError(f"{what} is missing or malformed", "run the linkage again")
    return array.tobytes()


def _pair(ctx: StepContext, state: PartyState, client: str, params: dict[str, Any]) -> bytes:
    peer = str(params.get("peer") or "")
    return pairwise_key(state.get("x25519", "private key"),
                        public_key_bytes(params.get("peer_public", "")), "psi", ctx.session_id,
                        client, peer)


def prepare(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """Tokens under the pairwise key, then the server's set-up or the client's request."""
    psi = _psi()
    client, side = client_of(params), params.get("side")
    if side not in ("server", "client"):
        raise ConfigError("psi_prepare needs side 'server' or 'client'", "")
    ids = ClientIds.model_validate(params.get("ids") or {})
    check_columns(datasets, ids)
    state = PartyState(ctx, client)
    k = _pair(ctx, state, client, params)
    enc = encoding(derive(k, "tokens", ctx.session_id), ids, None)
    threads = _threads(params)
    out: dict[str, np.ndarray] = {}
    counts = {}
    obj = psi.server.CreateWithNewKey(True) if side == "server" else \
        psi.client.CreateWithNewKey(True)
    scalar = obj.GetPrivateKeyBytes()
    state.put("psi-key", scalar)
    for marker in state.folder.glob("*.served"):  # a new key answers one new request
        marker.unlink()
    roles = linked_roles(datasets, params)
    for i, role in enumerate(roles):
        found = encode_dataset(ctx, datasets[role], enc, f"hashing {role} ids",
                               (i / len(roles), (i + 0.3) / len(roles)))
        state.put_array(f"{role}.rows", found.rows)
        state.put_array(f"{role}.tokens", found.tokens)
        remember_version(state, role, datasets[role])
        items = [bytes(t) for t in found.tokens]
        ctx.progress((i + 0.3) / len(roles), f"blinding {role} ids")
        if side == "server":
            parts = _parallel(lambda c: psi.server.CreateFromKey(scalar, True).CreateSetupMessage(
                0.0, 1, list(c), psi.DataStructure.RAW), items, threads)
            setup = psi.ServerSetup()
            setup.raw.encrypted_elements.extend(
                sorted(e for p in parts for e in p.raw.encrypted_elements))
            out[f"{role}_setup"] = np.frombuffer(setup.SerializeToString(), np.uint8)
        else:
            parts = _parallel(lambda c: psi.client.CreateFromKey(scalar, True).CreateRequest(
                list(c)), items, threads)
            request = psi.Request()
            request.reveal_intersection = True
            for p in parts:
                request.encrypted_elements.extend(p.encrypted_elements)
            data = request.SerializeToString()
            out[f"{role}_request"] = np.frombuffer(data, np.uint8)
            out[f"{role}_mac"] = np.frombuffer(_mac(k, ctx.session_id, role, data), np.uint8)
        counts[role] = {"n_records": found.n_records, "n_missing": found.n_missing,
                        "n_duplicates": found.n_duplicates, "n_sent": len(found.tokens)}
    return StepResult(tensors=out, outputs={"counts": counts})


def _mac(k: bytes, session: str, role: str, data: bytes) -> bytes:
    return hmac.new(derive(k, "psi-request", session, role), data, hashlib.sha256).digest()


def serve(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """The server blinds the client's request once more (once per session and role)."""
    psi = _psi()
    client = client_of(params)
    state = PartyState(ctx, client)
    k = _pair(ctx, state, client, params)
    scalar = state.get("psi-key", "PSI key")
    out = {}
    for role in linked_roles(datasets, params):
        if f"{role}_request" not in tensors:
            raise ConfigError(f"the coordinator sent nothing for {role}", "run the linkage again")
        data = _bytes(tensors[f"{role}_request"], f"the {role} request")
        mac = _bytes(tensors.get(f"{role}_mac"), f"the {role} request's MAC")
        if not hmac.compare_digest(mac, _mac(k, ctx.session_id, role, data)):
            raise PermissionDenied(f"the {role} PSI request does not come from the other party",
                                   "the relay altered it; run the linkage again")
        seen = hashlib.sha256(data).hexdigest().encode()
        marker = state.folder / f"{role}.served"
        if marker.exists() and marker.read_bytes() != seen:
            raise PermissionDenied("this runner already answered a PSI request in this session",
                                   "a linkage answers one request; start a new session")
        state.put(f"{role}.served", seen)
        request = psi.Request()
        request.ParseFromString(data)
        elements = list(request.encrypted_elements)

        def blind(chunk: Sequence[bytes]) -> Any:
            part = psi.Request()
            part.reveal_intersection = True
            part.encrypted_elements.extend(chunk)
            return psi.server.CreateFromKey(scalar, True).ProcessRequest(part)

        response = psi.Response()
        for p in _parallel(blind, elements, _threads(params)):
            response.encrypted_elements.extend(p.encrypted_elements)
        out[f"{role}_response"] = np.frombuffer(response.SerializeToString(), np.uint8)
    return StepResult(tensors=out)


def _sealed_aad(session: str, role: str) -> bytes:
    return f"psi-intersection|{session}|{role}".encode()


def intersect(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
              tensors: dict[str, np.ndarray]) -> StepResult:
    """The client: its part of the intersection, stored; the tokens sealed for the server."""
    psi = _psi()
    client = client_of(params)
    state = PartyState(ctx, client)
    k = _pair(ctx, state, client, params)
    scalar = state.get("psi-key", "PSI key")
    linked, sealed = {}, {}
    for role in linked_roles(datasets, params):
        if f"{role}_setup" not in tensors:
            raise ConfigError(f"the coordinator sent nothing for {role}", "run the linkage again")
        setup = psi.ServerSetup()
        setup.ParseFromString(_bytes(tensors[f"{role}_setup"], f"the {role} set-up"))
        response = psi.Response()
        response.ParseFromString(_bytes(tensors.get(f"{role}_response"), f"the {role} response"))
        elements = list(response.encrypted_elements)
        sent = state.get_array(f"{role}.tokens", "sent tokens")
        if len(elements) != len(sent):
            raise ConfigError(f"the {role} PSI response does not answer this party's request",
                              "run the linkage again")
        size = max(1, -(-len(elements) // _threads(params)))

        def found_in(start: int, _els: list[bytes] = elements, _setup: Any = setup,
                     _size: int = size) -> list[int]:
            part = psi.Response()
            part.encrypted_elements.extend(_els[start:start + _size])
            got = psi.client.CreateFromKey(scalar, True).GetIntersection(_setup, part)
            return [start + i for i in got]

        starts = list(range(0, len(elements), size)) or [0]
        with ThreadPoolExecutor(len(starts)) as pool:
            hits = sorted(i for part in pool.map(found_in, starts) for i in part)
        pos = np.asarray(hits, dtype=np.int64)
        common = sent[pos]
        rows = state.get_array(f"{role}.rows", "rows of the sent tokens")
        linked[role] = (rows[pos], digest_of(ctx.session_id, common))
        sealed[f"{role}_sealed"] = np.frombuffer(
            seal(derive(k, "psi-result", ctx.session_id), common.tobytes(),
                 _sealed_aad(ctx.session_id, role)), np.uint8)
    out = stage_alignment(ctx, state, datasets, linked)
    return StepResult(tensors=sealed, outputs={"linked": out})


def psi_align(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
              tensors: dict[str, np.ndarray]) -> StepResult:
    """The server: its rows of the intersection, in the client's (token) order, stored."""
    client = client_of(params)
    state = PartyState(ctx, client)
    k = _pair(ctx, state, client, params)
    linked = {}
    for role in linked_roles(datasets, params):
        if f"{role}_sealed" not in tensors:
            raise ConfigError(f"the coordinator sent nothing for {role}", "run the linkage again")
        plain = open_sealed(derive(k, "psi-result", ctx.session_id),
                            _bytes(tensors[f"{role}_sealed"], f"the {role} intersection"),
                            _sealed_aad(ctx.session_id, role), f"the {role} intersection")
        if len(plain) % 16:
            raise ConfigError(f"the {role} intersection is malformed", "run the linkage again")
        common = np.frombuffer(plain, np.uint8).reshape(-1, 16)
        sent = state.get_array(f"{role}.tokens", "sent tokens")
        keys_sent, keys_common = sent.view("S16").ravel(), common.view("S16").ravel()
        pos = np.searchsorted(keys_sent, keys_common)
        ok = (pos < len(keys_sent)) & (keys_sent[np.minimum(pos, len(keys_sent) - 1)] == keys_common) \
            if len(keys_sent) else np.zeros(len(keys_common), bool)
        if not bool(np.all(ok)) or bool(np.any(np.diff(pos) <= 0)):  # sorted, so distinct
            raise PermissionDenied(f"the {role} intersection names ids this party does not hold",
                                   "the other party deviated from the protocol")
        rows = state.get_array(f"{role}.rows", "rows of the sent tokens")
        linked[role] = (rows[pos.astype(np.int64)], digest_of(ctx.session_id, common))
    out = stage_alignment(ctx, state, datasets, linked)
    return StepResult(outputs={"linked": out})
