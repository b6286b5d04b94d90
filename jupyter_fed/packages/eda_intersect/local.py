"""Runner half of EDA intersect mode: the steps, each on the PRL intersection's aligned rows.

``describe``
    Individual mode's releases (DP histograms, sums, categories) of this party's columns and
    paired columns, computed by :func:`jupyter_fed.packages.eda.local.compute` on the aligned
    handle: the same DP and suppression, restricted to the linked people. Also the alignment's
    size and digest, so the plan can check that every party reads the same linkage.
``local_pairs``
    Pairs of two paired columns of this party: the pair aggregates in the clear, plus the same
    noise the encrypted path adds.
``encrypt``
    Key owner of a pair of parties: a fresh BFV key, this party's fields encrypted; the public
    key and the ciphertexts leave, the secret key stays in a 0600 file until ``decrypt``.
``evaluate``
    The other party: encrypted inner products of its fields with the owner's, DP noise, masks
    (see :mod:`._he`). It never sees a plaintext of the other party.
``decrypt``
    Key owner: the noisy totals, released as pair aggregates (small counts suppressed); the
    secret key is deleted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages.alignment import SESSION_ID, principal_dir, write_private_file
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.eda.local import compute as eda_compute
from jupyter_fed.packages.eda_intersect import _he
from jupyter_fed.packages.eda_intersect._fields import (
    FieldSpec,
    block_noise,
    fields_of,
    release_pair,
)
from jupyter_fed.packages.eda_intersect.config import (
    IntersectConfig,
    eda_part,
    pair_share,
    parse,
    parse_data,
)

__all__ = ["decrypt", "describe", "encrypt", "evaluate", "local_pairs"]


def _client(params: dict[str, Any]) -> str:
    client = params.get("client")
    if not isinstance(client, str) or not client:
        raise ConfigError("the step's parameters name no client", "the coordinator names it")
    return client


def _aligned(datasets: dict[str, DatasetHandle], params: dict[str, Any]) -> DatasetHandle:
    data = parse_data(params.get("data_config"))
    return datasets["data"].aligned(data.prl_session_id)


def _check_paired(handle: DatasetHandle, client: str, columns: list[str]) -> None:
    known = {c.name: c.role for c in handle.info.columns}
    for col in columns:
        if col not in known:
            raise ConfigError(f"data_config.paired_columns.{client}: {col!r} is not a column of "
                              f"dataset {handle.info.name!r}", "pair columns of each party's "
                              "own dataset")
        if known[col] == "id":
            raise PermissionDenied(f"data_config.paired_columns.{client}: {col!r} of dataset "
                                   f"{handle.info.name!r} is an id column", "ids are never paired")


def describe(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> StepResult:
    client = _client(params)
    data = parse_data(params.get("data_config"))
    cfg = parse(params.get("model_config"))
    handle = _aligned(datasets, params)
    paired = data.paired_columns.get(client, [])
    _check_paired(handle, client, paired)
    own = data.clients[client].columns if client in data.clients else []
    if own:
        columns: list[Any] = list(own) + [c for c in paired if c not in own]
    else:
        columns = []  # all columns (paired ones are among them)
    name = handle.info.name
    eda = eda_part(cfg)  # `categorical` names columns of every party: keep this party's
    mine = {c.name for c in handle.info.columns}
    eda["categorical"] = [c for c in cfg.categorical if c in mine]
    result = eda_compute(ctx, {"data": handle}, {"model_config": eda,
                                                 "data_config": {name: columns},
                                                 "dataset": name}, {})
    align = getattr(handle, "alignment", None)
    result.outputs.update(num_rows=int(handle.num_rows),
                          digest=str(getattr(align, "digest", "")))
    return result


# ---------------------------------------------------------------------------- pair helpers
def _specs(params: dict[str, Any], key: str) -> list[FieldSpec]:
    raw = params.get(key)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"the step's parameters carry no {key}", "the coordinator sends them")
    return [FieldSpec.from_dict(s) for s in raw]


def _fields(handle: DatasetHandle, specs: list[FieldSpec], q: int) -> np.ndarray:
    cols = [s.column for s in specs]
    values = handle.to_numpy(cols, np.float64)
    return np.concatenate([fields_of(values[:, i], s, q) for i, s in enumerate(specs)], axis=1)


def _offsets(specs: list[FieldSpec]) -> list[int]:
    return [0, *np.cumsum([s.width for s in specs]).tolist()]


def _epsilon_per_pair(ctx: StepContext, cfg: IntersectConfig, params: dict[str, Any]) -> float:
    """What the runner debited for this step, shared by its pairs (never more than debited)."""
    n, eps = pair_share(cfg, params)
    grant = (ctx.policy.get("data") or {}).get("grant")
    if grant is not None:
        if eps > float(grant["epsilon"]) * (1 + 1e-9):
            raise RuntimeError("a pair step would spend more epsilon than the runner debited")
        eps = float(grant["epsilon"])
    return eps / n


def _quant(params: dict[str, Any]) -> int:
    q = params.get("q")
    if not isinstance(q, int) or isinstance(q, bool) or not 1 <= q <= 12:
        raise ConfigError("the step's fixed-point precision is missing or out of range", "")
    return q


def _k(ctx: StepContext) -> int:
    return int((ctx.policy.get("data") or {}).get("min_count", 10))


def _key_file(ctx: StepContext, client: str, peer: str) -> Path:
    if ctx.cache_dir is None or not SESSION_ID.match(ctx.session_id or ""):
        raise ConfigError("EDA intersect runs only in a runner (the key owner keeps its key "
                          "between steps)", "")
    name = hashlib.sha256(f"{client}\x1f{peer}".encode()).hexdigest()[:24]
    return principal_dir(ctx.cache_dir, ctx.principal, "eda-intersect") / ctx.session_id / \
        f"{name}.key"


def _pair_indices(params: dict[str, Any], left: int, right: int) -> list[tuple[int, int]]:
    pairs = params.get("pairs")
    out = []
    for p in pairs if isinstance(pairs, list) else []:
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(i, int) for i in p)):
            raise ConfigError("malformed pair in the step's parameters", "")
        if not (0 <= p[0] < left and 0 <= p[1] < right):
            raise ConfigError("a pair in the step's parameters names no column", "")
        out.append((p[0], p[1]))
    return out


# ---------------------------------------------------------------------------- steps
def local_pairs(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
                tensors: dict[str, np.ndarray]) -> StepResult:
    """Pairs of this party's own columns: aggregates in the clear, the same noise."""
    cfg = parse(params.get("model_config"))
    handle = _aligned(datasets, params)
    specs, q = _specs(params, "specs"), _quant(params)
    _check_paired(handle, _client(params), [s.column for s in specs])
    eps = _epsilon_per_pair(ctx, cfg, params)
    fields = _fields(handle, specs, q)
    off = _offsets(specs)
    out = []
    for i, j in _pair_indices(params, len(specs), len(specs)):
        x, y = specs[i], specs[j]
        fx, fy = fields[:, off[i]:off[i + 1]], fields[:, off[j]:off[j + 1]]
        block = fy.T @ fx + block_noise(x, y, eps, q)
        out.append(release_pair(block, x, y, eps, q, _k(ctx)))
    return StepResult(outputs={"pairs": out})


def encrypt(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """The key owner's fields, encrypted under a key made for this pair of parties."""
    client, peer = _client(params), str(params.get("peer") or "")
    parse(params.get("model_config"))
    handle = _aligned(datasets, params)
    specs, q = _specs(params, "specs"), _quant(params)
    _check_paired(handle, client, [s.column for s in specs])
    fields = _fields(handle, specs, q)
    key = _he.new_context()
    write_private_file(_key_file(ctx, client, peer), _he.secret_bytes(key))
    ctx.progress(0.2, "encrypting")
    chunks = _he.encrypt_fields(key, fields)
    public = np.frombuffer(_he.public_context(key), dtype=np.uint8).copy()
    return StepResult(tensors={"public": public, **_he.pack(chunks)},
                      outputs={"width": int(fields.shape[1]), "rows": int(fields.shape[0]),
                               "ciphertexts": len(chunks)})


def evaluate(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> StepResult:
    """Encrypted inner products of this party's fields with the key owner's, noised and masked."""
    cfg = parse(params.get("model_config"))
    handle = _aligned(datasets, params)
    own, peer, q = _specs(params, "specs"), _specs(params, "peer_specs"), _quant(params)
    _check_paired(handle, _client(params), [s.column for s in own])
    pairs = _pair_indices(params, len(peer), len(own))
    if sorted(pairs) != [(i, j) for i in range(len(peer)) for j in range(len(own))]:
        # a block the key owner could decrypt without noise must never be computed
        raise PermissionDenied("every combination of the two parties' paired columns must be "
                               "a pair of the step (each is released with noise)", "")
    eps = _epsilon_per_pair(ctx, cfg, params)
    public = tensors.get("public")
    if public is None:
        raise ConfigError("the key owner's public key is missing", "")
    fields = _fields(handle, own, q)
    po, oo = _offsets(peer), _offsets(own)
    noise = np.zeros((oo[-1], po[-1]), dtype=np.int64)
    for i, j in pairs:
        noise[oo[j]:oo[j + 1], po[i]:po[i + 1]] = block_noise(peer[i], own[j], eps, q)
    ctx.progress(0.1, "encrypted inner products")
    results = _he.evaluate(np.ascontiguousarray(public, dtype=np.uint8).tobytes(),
                           _he.unpack(tensors), po[-1], fields, noise)
    return StepResult(tensors=_he.pack(results), outputs={"fields": int(fields.shape[1])})


def decrypt(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """The noisy totals, released per pair; the secret key is deleted."""
    client, peer = _client(params), str(params.get("peer") or "")
    own, other, q = _specs(params, "specs"), _specs(params, "peer_specs"), _quant(params)
    path = _key_file(ctx, client, peer)
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("this party holds no key for the pair's encrypted aggregates",
                          "run the session again (the encrypt step comes first)") from None
    try:
        oo, po = _offsets(own), _offsets(other)
        totals = _he.decrypt_sums(secret, _he.unpack(tensors), oo[-1])
        if totals.shape[0] != po[-1]:
            raise ConfigError("the peer returned the wrong number of ciphertexts", "")
        eps = float(params.get("epsilon_pair") or 0.0)
        out = []
        for i, j in _pair_indices(params, len(own), len(other)):
            block = totals[po[j]:po[j + 1], oo[i]:oo[i + 1]]
            out.append(release_pair(block, own[i], other[j], eps, q, _k(ctx)))
    finally:
        path.unlink(missing_ok=True)
    return StepResult(outputs={"pairs": out})
