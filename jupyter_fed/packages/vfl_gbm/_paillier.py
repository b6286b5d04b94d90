"""Paillier (python-paillier, ``phe``) for SecureBoost: the label party's gradients, encrypted.

Why Paillier rather than the BFV of ``eda_intersect``: a passive party sums the gradients of the
rows in each (node, feature, bin) — thousands of different subsets of the rows per level. With
Paillier each row is one ciphertext and a subset sum is a product of ciphertexts, one
multiplication per row and feature, and each sum is one small ciphertext (2·key_bits bits). With
BFV's slot packing every subset sum would need its own full ciphertext (hundreds of KB) or many
rotations.

Encoding: a row's gradient ``g`` and hessian ``h`` travel as *one* plaintext,
``round(g·2**FRAC) · 2**SHIFT + round(h·2**FRAC)``: the hessian is never negative and its sums
stay below ``2**SHIFT`` (``2**FRAC`` per row times fewer than ``2**(SHIFT-FRAC-1)`` rows), so a
sum of packed values unpacks to the two sums exactly. One encryption and one multiplication per
row instead of two. Negative values are represented modulo ``n`` (decrypted values above
``n/2`` are negative).

Every sum a passive party returns is re-randomised (multiplied by a fresh encryption of zero),
so it is not the product of the label party's own ciphertexts, which would let the label party
test which rows a bin holds. The private key never leaves the label party's runner; passive
parties and the coordinator get ``n`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError

__all__ = ["FRAC", "SHIFT", "decrypt_sums", "encrypt_rows", "from_bytes", "keypair",
           "private_key", "public_key", "subset_sums", "to_bytes"]

FRAC = 32
"""Fixed-point bits of a gradient or hessian (resolution 2.3e-10)."""
SHIFT = 96
"""Bit offset of the gradient in a packed plaintext: hessian sums stay below it for up to
``2**63`` rows of hessian at most 1."""


def keypair(bits: int) -> tuple[Any, Any]:
    import phe

    return phe.generate_paillier_keypair(n_length=bits)


def public_key(n: int) -> Any:
    import phe

    return phe.PaillierPublicKey(int(n))


def private_key(n: int, p: int, q: int) -> Any:
    import phe

    return phe.PaillierPrivateKey(public_key(n), int(p), int(q))


def width(n: int) -> int:
    """Bytes of one ciphertext (an integer below ``n**2``)."""
    return (int(n) ** 2).bit_length() // 8 + 1


def to_bytes(values: Sequence[int], size: int) -> np.ndarray:
    """Integers as a (count × size) uint8 array, big-endian: arrays, not pickles, on the wire."""
    raw = b"".join(int(v).to_bytes(size, "big") for v in values)
    return np.frombuffer(raw, np.uint8).reshape(len(values), size).copy()


def from_bytes(arr: np.ndarray, n: int) -> list[int]:
    if arr.ndim != 2 or arr.shape[1] != width(n):
        raise ConfigError("an encrypted payload has the wrong shape",
                          "the coordinator relays it unchanged; start a new session")
    nsq = int(n) ** 2
    out = [int.from_bytes(row.tobytes(), "big") for row in arr]
    if any(not 0 < v < nsq for v in out):
        raise ConfigError("an encrypted payload holds a value that is not a ciphertext", "")
    return out


def _fixed(values: np.ndarray) -> list[int]:
    return [int(v) for v in np.round(np.asarray(values, np.float64) * 2.0**FRAC).astype(object)]


def encrypt_rows(pub: Any, grad: np.ndarray, hess: np.ndarray, priv: Any = None) -> np.ndarray:
    """One ciphertext per row of the packed ``(g, h)`` (see the module docstring).

    With the private key (the label party encrypts its own gradients), each ciphertext's random
    factor ``r^n mod n²`` is computed modulo ``p²`` and ``q²`` and recombined (Chinese remainder
    theorem): the same ciphertexts, in about half the time — and encryption is most of a tree's
    cost at the label party."""
    if (hess < 0).any() or (np.abs(grad) > 2.0**(SHIFT - FRAC - 32)).any():
        raise ConfigError("gradients out of the encodable range", "scale the target")
    n = pub.n
    plain = [((g << SHIFT) + h) % n for g, h in zip(_fixed(grad), _fixed(hess), strict=True)]
    fast = _crt_encryptor(priv) if priv is not None else None
    out = [fast(m) for m in plain] if fast is not None else [pub.raw_encrypt(m) for m in plain]
    return to_bytes(out, width(n))


def _crt_encryptor(priv: Any) -> Any:
    """``m ↦ (1 + n·m) · r^n mod n²`` with ``r`` uniform in ``[1, n)`` (as ``phe`` draws it),
    ``r^n`` by CRT over ``p²`` and ``q²``; ``None`` without gmpy2."""
    try:
        import gmpy2
    except ImportError:  # pragma: no cover - phe's own encryption then
        return None
    import secrets

    n, p, q = (gmpy2.mpz(int(v)) for v in (priv.public_key.n, priv.p, priv.q))
    nsq, psq, qsq = n * n, p * p, q * q
    # r is a unit mod p² (r < n, and r a multiple of p has probability 1/q): r^n = r^(n mod φ(p²))
    ep, eq = n % (p * (p - 1)), n % (q * (q - 1))
    q_inv = gmpy2.invert(qsq, psq)

    def encrypt(m: int) -> int:
        r = gmpy2.mpz(secrets.randbelow(int(n) - 1) + 1)
        xq = gmpy2.powmod(r, eq, qsq)
        obfuscator = xq + (gmpy2.powmod(r, ep, psq) - xq) * q_inv % psq * qsq
        return int((n * m + 1) % nsq * obfuscator % nsq)

    return encrypt


def subset_sums(n: int, cts: list[int], groups: np.ndarray, count: int) -> list[int]:
    """Encrypted sums over the rows of each group: ``groups[r]`` in ``[0, count)`` (or -1, no
    group), re-randomised. Products modulo ``n**2``, in gmpy2 when it is installed. An empty
    group's sum is ``1`` (its count, which the label party is told, already says it is empty;
    re-randomising it would cost an encryption for nothing)."""
    pub = public_key(n)
    try:
        import gmpy2

        nsq: Any = gmpy2.mpz(int(n) ** 2)
        acc: list[Any] = [gmpy2.mpz(1)] * count
        vals: list[Any] = [gmpy2.mpz(c) for c in cts]
    except ImportError:  # pragma: no cover - slower, same result
        nsq, acc, vals = int(n) ** 2, [1] * count, cts
    for r in np.flatnonzero(groups >= 0).tolist():
        k = int(groups[r])
        acc[k] = acc[k] * vals[r] % nsq
    filled = np.bincount(groups[groups >= 0], minlength=count) > 0
    return [int(a * pub.raw_encrypt(0) % nsq) if filled[k] else 1 for k, a in enumerate(acc)]


def decrypt_sums(priv: Any, values: Sequence[int]) -> np.ndarray:
    """(count × 2) float64 sums of gradients and hessians."""
    n = priv.public_key.n
    out = np.zeros((len(values), 2))
    for i, c in enumerate(values):
        if int(c) == 1:  # an empty group
            continue
        t = priv.raw_decrypt(int(c))
        if t > n // 2:
            t -= n
        g = t >> SHIFT
        h = t - (g << SHIFT)
        out[i] = (g / 2.0**FRAC, h / 2.0**FRAC)
    return out
