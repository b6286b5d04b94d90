"""Encrypted inner products between two parties' per-row fields (BFV, TenSEAL / Microsoft SEAL).

The key owner P encrypts its rows' *fields* (one-hot bin indicators and fixed-point clipped
values of its paired columns; see :mod:`._fields`) under a fresh BFV key that never leaves its
runner. The evaluator Q, holding the public key only, computes for each of its own fields ``v``
the encrypted column sums ``sum_r Q[r, v] * P[r, f]`` for every field ``f`` of P — a
plaintext × ciphertext product and additions, no rotations, so no Galois keys to ship — then adds
its DP noise and masks, and returns one ciphertext per field of its own. P decrypts and sums.

Layout: a ciphertext holds ``R = SLOTS // W`` rows of ``W`` fields (slot ``p * W + f``). Q
multiplies chunk ``c`` by its field ``v`` repeated ``W`` times per row, adds the chunks, and has
a ciphertext whose slot ``(p, f)`` is the partial sum over the rows at position ``p``. Before
it returns, Q

* adds a fresh encryption of zero under P's public key (re-randomises the ciphertext, whose
  random part would otherwise be P's own encryption randomness times Q's plaintext);
* adds, per field ``f``, uniformly random masks over the ``R`` positions that sum to zero modulo
  the plaintext modulus, so the partial sums P decrypts are uniformly random given their total:
  P learns the total over rows and nothing else (information-theoretically);
* adds the DP noise (discrete Laplace, :func:`~jupyter_fed.privacy.mechanisms.integer_noise`)
  to position 0 of every field: the totals P can compute are noisy.

Parameters: ring degree 8192 with a 180-bit coefficient modulus (60+60+60 bits; the
HomomorphicEncryption.org standard allows 218 bits at 128-bit classical security for this
degree, and SEAL refuses parameters below 128 bits) and a 45-bit prime plaintext modulus
``≡ 1 (mod 2·8192)`` for batching: 8192 exact integer slots per ciphertext.

Limits, stated: semi-honest parties (each runs this code) and a coordinator that relays
faithfully, as for record linkage. Q cannot check what P encrypted: a P (or a coordinator
substituting its own public key and ciphertexts) that encrypted a huge value for one row
instead of its indicators would read Q's group of that row through the noise, which is
calibrated to indicators and values within ``±2**q``; range proofs would close this and are
not implemented. BFV has no formal circuit privacy: the decryption error of a returned
ciphertext depends, below the plaintext, on Q's plaintext fields; the fresh encryption of zero
re-randomises its public part, and P's runner code never looks at raw decryption errors, but a
party that modified its runner to analyse them is outside this model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from jupyter_fed.errors import ConfigError

if TYPE_CHECKING:
    import tenseal as ts

__all__ = ["PLAIN_MODULUS", "SLOTS", "Chunks", "centred", "decrypt_sums", "encrypt_fields",
           "evaluate", "new_context", "pack", "public_context", "rows_per_ciphertext", "unpack"]

POLY_DEGREE = 8192
SLOTS = POLY_DEGREE
COEFF_BITS = [60, 60, 60]
PLAIN_MODULUS = 35184371613697
"""A 45-bit prime ``≡ 1 (mod 16384)``: BFV batching needs ``t ≡ 1 (mod 2N)``."""

Chunks = list[bytes]


def new_context() -> ts.Context:
    """A fresh BFV context with its secret key (stays at the key owner)."""
    import tenseal as ts

    return ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=POLY_DEGREE,
                      plain_modulus=PLAIN_MODULUS, coeff_mod_bit_sizes=COEFF_BITS)


def secret_bytes(ctx: ts.Context) -> bytes:
    return ctx.serialize(save_public_key=True, save_secret_key=True, save_galois_keys=False,
                         save_relin_keys=False)


def public_context(ctx: ts.Context) -> bytes:
    """The parameters and public key only: what the evaluator gets (no relin or Galois keys:
    the protocol needs neither)."""
    return ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=False,
                         save_relin_keys=False)


def load_context(data: bytes, *, secret: bool) -> ts.Context:
    import tenseal as ts

    try:
        ctx = ts.context_from(data)
    except Exception:
        raise ConfigError("the encryption context could not be read", "the coordinator relays "
                          "it unchanged; check that both runners run the same version") from None
    if secret != ctx.is_private():
        raise ConfigError("the encryption context has the wrong keys for this party", "")
    if not ctx.has_public_key():
        raise ConfigError("the encryption context carries no public key", "")
    return ctx


def rows_per_ciphertext(width: int) -> int:
    if not 1 <= width <= SLOTS:
        raise ConfigError(f"{width} fields per row do not fit one ciphertext of {SLOTS} slots",
                          "pair fewer columns, or use fewer bins")
    return SLOTS // width


def centred(values: np.ndarray) -> np.ndarray:
    """Integers modulo the plaintext modulus, as signed values in ``(-t/2, t/2]``."""
    t = PLAIN_MODULUS
    v = np.mod(np.asarray(values, dtype=np.int64), t)
    return np.where(v > t // 2, v - t, v)


def _check_range(fields: np.ndarray) -> None:
    if fields.size and int(np.abs(fields).max()) >= PLAIN_MODULUS // 2:
        raise ValueError("a field value does not fit the plaintext modulus")


def encrypt_fields(ctx: ts.Context, fields: np.ndarray) -> Chunks:
    """P's rows × fields (int64), ``R`` rows per ciphertext (the last padded with zero rows)."""
    import tenseal as ts

    fields = np.ascontiguousarray(fields, dtype=np.int64)
    _check_range(fields)
    n, width = fields.shape
    per = rows_per_ciphertext(width)
    out = []
    for start in range(0, max(n, 1), per):
        block = np.zeros((per, width), dtype=np.int64)
        part = fields[start:start + per]
        block[:len(part)] = part
        out.append(ts.bfv_vector(ctx, block.ravel().tolist()).serialize())
    return out


def uniform_mod_t(shape: tuple[int, ...]) -> np.ndarray:
    """Uniform integers in ``[0, t)`` from the OS's randomness (rejection: no modulo bias)."""
    t = PLAIN_MODULUS
    size = int(np.prod(shape))
    limit = (2**64 // t) * t
    out = np.empty(0, dtype=np.uint64)
    while out.size < size:
        raw = np.frombuffer(os.urandom(8 * (size - out.size + 16)), dtype=np.uint64)
        out = np.concatenate([out, raw[raw < np.uint64(limit)]])
    return (out[:size] % np.uint64(t)).astype(np.int64).reshape(shape)


def zero_sum_masks(rows: int, width: int) -> np.ndarray:
    """(rows, width) uniform values modulo t whose column sums are 0 modulo t."""
    masks = uniform_mod_t((rows, width))
    masks[-1] = 0
    masks[-1] = np.mod(-np.mod(masks.sum(axis=0), PLAIN_MODULUS), PLAIN_MODULUS)
    return masks


def evaluate(public: bytes, chunks: Sequence[bytes], width: int, own: np.ndarray,
             noise: np.ndarray) -> Chunks:
    """Q's half: for each of its fields ``v`` (columns of ``own``, rows aligned with P's), one
    ciphertext whose slots sum to ``sum_r own[r, v] * P[r, :] + noise[v]`` (see module doc).

    ``noise`` is (own fields × P's fields), int64.
    """
    import tenseal as ts

    ctx = load_context(public, secret=False)
    own = np.ascontiguousarray(own, dtype=np.int64)
    _check_range(own)
    n, fields = own.shape
    per = rows_per_ciphertext(width)
    if len(chunks) != -(-max(n, 1) // per):
        raise ConfigError(f"the peer sent {len(chunks)} ciphertext(s) for {n} aligned rows of "
                          f"{width} fields; expected {-(-max(n, 1) // per)}",
                          "both parties must read the same linkage")
    if noise.shape != (fields, width):
        raise ValueError("noise must be (own fields × peer fields)")
    acc: list[ts.BFVVector | None] = [None] * fields
    for c, blob in enumerate(chunks):
        try:
            ct = ts.bfv_vector_from(ctx, blob)
        except Exception:
            raise ConfigError("a ciphertext from the peer could not be read", "") from None
        if ct.size() != per * width:
            raise ConfigError("a ciphertext from the peer has the wrong size", "")
        block = np.zeros((per, fields), dtype=np.int64)
        part = own[c * per:(c + 1) * per]
        block[:len(part)] = part
        for v in range(fields):
            column = block[:, v]
            if not column.any():
                continue  # nothing of this field in these rows: the product is zero
            prod = ct * np.repeat(column, width).tolist()
            acc[v] = prod if acc[v] is None else acc[v] + prod  # type: ignore[operator]
    out = []
    zeros = [0] * (per * width)
    for v in range(fields):
        masks = zero_sum_masks(per, width)
        masks[0] = np.mod(masks[0] + noise[v], PLAIN_MODULUS)
        fresh = ts.bfv_vector(ctx, zeros)  # re-randomises (and stands in for an empty sum)
        total = fresh if acc[v] is None else acc[v] + fresh  # type: ignore[operator]
        total = total + centred(masks).ravel().tolist()
        out.append(total.serialize())
    return out


def decrypt_sums(secret: bytes, results: Sequence[bytes], width: int) -> np.ndarray:
    """P's last half: (Q's fields × P's fields) signed totals, noise included."""
    import tenseal as ts

    ctx = load_context(secret, secret=True)
    per = rows_per_ciphertext(width)
    out = np.zeros((len(results), width), dtype=np.int64)
    for v, blob in enumerate(results):
        try:
            ct = ts.bfv_vector_from(ctx, blob)
        except Exception:
            raise ConfigError("a ciphertext from the peer could not be read", "") from None
        if ct.size() != per * width:
            raise ConfigError("a returned ciphertext has the wrong size", "")
        slots = np.mod(np.asarray(ct.decrypt(), dtype=np.int64), PLAIN_MODULUS)
        out[v] = centred(slots.reshape(per, width).sum(axis=0))
    return out


def pack(blobs: Sequence[bytes]) -> dict[str, np.ndarray]:
    """Ciphertexts as two named arrays (safetensors carries arrays, not lists of bytes)."""
    sizes = np.array([len(b) for b in blobs], dtype=np.int64)
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8) if blobs else np.zeros(0, np.uint8)
    return {"ct": data.copy(), "ct_sizes": sizes}


def unpack(tensors: dict[str, np.ndarray], prefix: str = "") -> Chunks:
    data, sizes = tensors.get(f"{prefix}ct"), tensors.get(f"{prefix}ct_sizes")
    if data is None or sizes is None or sizes.ndim != 1 or int(sizes.sum()) != data.size \
            or (sizes < 0).any():
        raise ConfigError("the encrypted payload is malformed", "the coordinator relays it "
                          "unchanged; check that both runners run the same version")
    raw = np.ascontiguousarray(data, dtype=np.uint8).tobytes()
    out, at = [], 0
    for s in sizes.tolist():
        out.append(raw[at:at + s])
        at += s
    return out
