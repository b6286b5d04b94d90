"""The cryptography of secure aggregation: key agreement, sealed shares, masks, fixed point.

Secure aggregation after Bonawitz et al. (2017), "Practical Secure Aggregation for
Privacy-Preserving Machine Learning", in the shape Flower's SecAgg+ uses: every client adds to its
quantised vector a *self mask* (from a seed of its own) and, for every other client, a *pairwise
mask* from a key agreed with that client (X25519); pairwise masks cancel in the sum, self masks
are removed once the clients reveal shares of the seeds. A client that drops out after sharing
leaves its pairwise masks in the others' vectors: the survivors reveal shares of its masking key
instead, from which the coordinator recomputes them. Seeds and keys are split with Shamir's
scheme (pycryptodome, 16-byte secrets) and sent to each peer sealed with AES-GCM under a key
agreed by X25519 and HKDF (``cryptography``), through the coordinator, which never holds a key.

Nothing here is a hand-made primitive: X25519, HKDF-SHA256, AES-GCM and the ChaCha20 stream that
expands a 32-byte key into a mask are ``cryptography``'s; the secret sharing is pycryptodome's.
What this module adds is the arithmetic of the ring ``Z / 2^64`` (numpy's ``uint64`` wraps
around) and the fixed-point encoding that brings floats into it: each value as one ring element,
or two for a 95-bit fixed point when the range needs it (:func:`quantise`).

Used by the runner (``runner/secagg.py``: keys, shares, masking) and by the coordinator
(``coordinator/secure.py``: removing the masks); neither holds the other's secrets.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from jupyter_fed.errors import PermissionDenied

__all__ = ["BLOCK", "LIMB", "MAX_CLIENTS", "RING", "SecAggError", "add_masks", "agree", "b64",
           "combine", "count_of", "counter", "dequantise", "expand", "fits", "limbs_for",
           "new_keypair",
           "open_sealed", "public_of", "quantise", "seal", "self_mask_key", "split", "threshold",
           "unb64"]

RING = 2**64
"""Masked vectors live in ``Z / 2^64``: numpy's ``uint64`` arithmetic wraps, which is the ring."""
BLOCK = 16
"""Bytes of one Shamir secret (pycryptodome shares 128-bit secrets); longer secrets are split."""
MAX_CLIENTS = 1000
"""Clients in one secure sum: shares and ciphertexts grow with the square of it."""


class SecAggError(PermissionDenied):
    """A secure-aggregation message that does not check out (a forged share, a wrong roster);
    the party refuses it and reveals nothing."""

    code = "secagg_refused"


def threshold(n: int) -> int:
    """Shares needed to rebuild a secret of one of ``n`` clients: a strict majority (at least 2).

    A majority is the smallest threshold that defeats the classic attack of a lying coordinator:
    telling half the clients that peer ``u`` survived (and collecting shares of its self mask)
    and the other half that ``u`` dropped (and collecting shares of its masking key). Each
    honest client reveals only one kind of share per peer, so two disjoint groups would each
    need ``threshold`` members — impossible when it exceeds ``n / 2``. Up to
    ``n - threshold(n)`` clients may drop out after sharing and the sum still unmasks.
    """
    return max(2, n // 2 + 1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, size: int | None = None) -> bytes:
    """Decode base64; a wrong length or alphabet is a refused message, not a crash."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise SecAggError("a secure-aggregation message carries malformed base64", "") from None
    if size is not None and len(data) != size:
        raise SecAggError(f"a secure-aggregation value has {len(data)} bytes, expected {size}", "")
    return data


# -- keys ------------------------------------------------------------------------------------
def new_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair as raw bytes ``(private, public)``, 32 bytes each."""
    key = X25519PrivateKey.generate()
    return (key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def public_of(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def agree(private: bytes, public: bytes, purpose: str, context: str) -> bytes:
    """A 32-byte key both ends of an X25519 pair derive alike, bound to ``purpose`` and
    ``context`` (the secure-aggregation round), so one agreement never serves two uses."""
    try:
        shared = X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(public))
    except ValueError:
        raise SecAggError("a peer's public key is not a valid X25519 key", "") from None
    info = f"jupyter-fed secagg {purpose}\x00{context}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def self_mask_key(seed: bytes, context: str) -> bytes:
    """The 32-byte stream key of a client's self mask, from its 16-byte (shared) seed."""
    info = f"jupyter-fed secagg self mask\x00{context}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(seed)


# -- sealed shares ---------------------------------------------------------------------------
def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM with a random 96-bit nonce (each key seals one message per round)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Open a sealed message; a forged, altered or misaddressed one is refused."""
    if len(blob) < 12 + 16:
        raise SecAggError("a sealed share is too short", "")
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag:
        raise SecAggError("a sealed share does not authenticate: it was altered, or it is "
                          "addressed to another client or round", "") from None


# -- Shamir ----------------------------------------------------------------------------------
def split(secret: bytes, k: int, n: int) -> list[list[bytes]]:
    """Shamir shares of ``secret`` (a multiple of 16 bytes), ``k`` of ``n`` needed.

    Returns one list per share holder (index ``i`` holds share ``i + 1``), of one 16-byte share
    per 16-byte block of the secret.
    """
    from Crypto.Protocol.SecretSharing import Shamir

    if len(secret) % BLOCK or not 2 <= k <= n <= MAX_CLIENTS:
        raise ValueError("secret of 16-byte blocks, 2 <= k <= n <= MAX_CLIENTS")
    out: list[list[bytes]] = [[] for _ in range(n)]
    for start in range(0, len(secret), BLOCK):
        for index, share in Shamir.split(k, n, secret[start:start + BLOCK]):
            out[index - 1].append(share)
    return out


def combine(shares: Mapping[int, Sequence[bytes]], k: int) -> bytes:
    """The secret from at least ``k`` holders' shares (share index → blocks)."""
    from Crypto.Protocol.SecretSharing import Shamir

    if len(shares) < k:
        raise SecAggError(f"{len(shares)} share(s) cannot rebuild a secret that needs {k}", "")
    chosen = sorted(shares.items())[:k]
    blocks = {len(v) for _, v in chosen}
    if len(blocks) != 1:
        raise SecAggError("shares of one secret have different lengths", "")
    return b"".join(Shamir.combine([(i, v[b]) for i, v in chosen])
                    for b in range(blocks.pop()))


def combine_all(secrets: Sequence[Mapping[int, Sequence[bytes]]], k: int) -> list[bytes]:
    """:func:`combine` of many secrets at once. When they were shared among the same holders —
    every survivor's seed, revealed by the same clients — the Lagrange weights at zero are
    computed once, in pycryptodome's own field arithmetic, instead of once per 16-byte block:
    at ten clients a round that is 2 ms of the coordinator's time instead of 17."""
    try:
        from Crypto.Protocol.SecretSharing import _Element
    except ImportError:  # pragma: no cover - a pycryptodome without it: one at a time
        return [combine(s, k) for s in secrets]
    holders = [sorted(s)[:k] for s in secrets]
    if not secrets or len(secrets[0]) < k or any(h != holders[0] for h in holders):
        return [combine(s, k) for s in secrets]
    xs = [_Element(i) for i in holders[0]]
    weights = []
    for j, x_j in enumerate(xs):  # l_j(0) = prod_{m != j} x_m / (x_j - x_m), in GF(2^128)
        num, den = _Element(1), _Element(1)
        for m, x_m in enumerate(xs):
            if m != j:
                num *= x_m
                den *= x_j + x_m
        weights.append(num * den.inverse())
    out = []
    for s in secrets:
        chosen = [s[i] for i in holders[0]]
        if len({len(v) for v in chosen}) != 1:
            raise SecAggError("shares of one secret have different lengths", "")
        blocks = []
        for b in range(len(chosen[0])):
            acc = _Element(0)
            for w, v in zip(weights, chosen, strict=True):
                acc += _Element(v[b]) * w
            blocks.append(acc.encode())
        out.append(b"".join(blocks))
    return out


# -- masks and fixed point -------------------------------------------------------------------
def expand(key: bytes, length: int) -> np.ndarray:
    """``length`` pseudo-random ``uint64`` words: the ChaCha20 key stream of ``key``.

    Each key is used for one mask of one round (it is derived per round and purpose), so the
    all-zero nonce never repeats under one key.
    """
    return _stream(key, bytes(8 * length))


def _stream(key: bytes, zeros: bytes) -> np.ndarray:
    encryptor = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return np.frombuffer(encryptor.update(zeros), dtype="<u8")  # read-only, no copy


def add_masks(vector: np.ndarray, self_key: bytes, pairwise: Sequence[tuple[bytes, int]]
              ) -> np.ndarray:
    """``vector + PRG(self) + Σ sign · PRG(pair)`` in ``Z / 2^64`` (``sign`` is +1 or -1)."""
    out = vector.astype(np.uint64, copy=True)
    zeros = bytes(8 * len(out))  # one buffer for every stream: masks are megabytes each
    out += _stream(self_key, zeros)
    for key, sign in pairwise:
        if sign > 0:
            out += _stream(key, zeros)
        else:
            out -= _stream(key, zeros)
    return out


LIMB = 2**32
"""With two limbs a value is ``hi`` (signed, wraps) and ``lo`` in ``[0, 2^32)``: the ``lo`` limbs
of up to 2^32 clients add up without wrapping, so the sum is exact over 95 bits — a range one
64-bit word cannot give together with a fine precision (sums of squares of a million rows beside
means to 1e-9). A sum that fits in 63 bits travels as one limb, half the bytes."""


def limbs_for(clients: int, clip: float, precision: float) -> int:
    """1 when the sum of ``clients`` values clipped to ``clip`` fits one signed 64-bit word,
    2 when it needs the 95-bit two-limb form."""
    return 1 if clients * (clip / precision + 1.0) < 2.0**62 else 2


def fits(clients: int, clip: float, precision: float) -> bool:
    """Whether the sum of ``clients`` values clipped to ``clip`` stays inside the 95-bit range."""
    return clients < LIMB and clients * (clip / precision / LIMB + 1.0) < 2.0**63


def quantise(values: np.ndarray, clip: float, precision: float, limbs: int = 2
             ) -> tuple[np.ndarray, int]:
    """Fixed point with step ``precision``, as ``uint64`` of shape ``(m, limbs)`` — one word
    ``x / precision``, or ``(hi, lo)`` with ``x ≈ (hi * 2^32 + lo) * precision`` — and how many
    values were clipped. Each value is kept within ``precision / 2`` (or float64's own rounding,
    when larger)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        raise ValueError("values to sum securely must be finite")
    clipped = int(np.count_nonzero(np.abs(x) > clip))
    x = np.clip(x, -clip, clip)
    out = np.empty((len(x), limbs), dtype=np.uint64)
    if limbs == 1:
        out[:, 0] = np.rint(x / precision).astype(np.int64).view(np.uint64)
        return out, clipped
    step = precision * LIMB
    hi = np.floor(x / step)
    lo = np.rint((x - hi * step) / precision)
    carry = np.floor(lo / LIMB)  # float rounding may leave lo a step outside [0, 2^32)
    hi, lo = hi + carry, lo - carry * LIMB
    out[:, 0] = hi.astype(np.int64).view(np.uint64)
    out[:, 1] = lo.astype(np.uint64)
    return out, clipped


def counter(value: int, limbs: int = 2) -> np.ndarray:
    """An exact non-negative count in the form of :func:`quantise` with precision 1."""
    if limbs == 1:
        return np.array([[value]], dtype=np.uint64)
    return np.array([[value // LIMB, value % LIMB]], dtype=np.uint64)


def dequantise(total: np.ndarray, precision: float, limbs: int = 2) -> np.ndarray:
    """The float sums from summed :func:`quantise` words (shape ``(m, limbs)``)."""
    words = np.asarray(total, dtype=np.uint64).reshape(-1, limbs)
    if limbs == 1:
        return words[:, 0].view(np.int64).astype(np.float64) * precision
    hi = words[:, 0].view(np.int64).astype(np.float64)
    return hi * (precision * LIMB) + words[:, 1].astype(np.float64) * precision


def count_of(total: np.ndarray, limbs: int = 2) -> int:
    """The summed count of :func:`counter` words."""
    words = [int(v) for v in np.asarray(total, dtype=np.uint64).reshape(limbs)]
    hi = words[0] - RING if words[0] >= RING // 2 else words[0]
    return hi if limbs == 1 else hi * LIMB + words[1]
