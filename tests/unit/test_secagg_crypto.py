"""Secure aggregation's arithmetic and cryptography, without runners (privacy/secagg.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from jupyter_fed.privacy import secagg as sa


def test_pairwise_masks_cancel_and_self_masks_come_off() -> None:
    rng = np.random.default_rng(0)
    values = [rng.normal(0, 50, 1000) for _ in range(4)]
    keys = [sa.new_keypair() for _ in values]
    seeds = [os.urandom(16) for _ in values]
    masked = []
    for i, x in enumerate(values):
        q, _ = sa.quantise(x, 1e4, 1e-6)
        pairs = [(sa.agree(keys[i][0], keys[j][1], "mask", "r"), 1 if i < j else -1)
                 for j in range(len(values)) if j != i]
        masked.append(sa.add_masks(q.ravel(), sa.self_mask_key(seeds[i], "r"), pairs))
    total = np.sum(masked, axis=0, dtype=np.uint64)
    for seed in seeds:
        total -= sa.expand(sa.self_mask_key(seed, "r"), len(total))
    got = sa.dequantise(total, 1e-6)
    assert np.max(np.abs(got - np.sum(values, axis=0))) <= 4 * 1e-6 / 2 + 1e-9
    assert not np.allclose(sa.dequantise(masked[0], 1e-6), values[0])  # one vector shows nothing


def test_quantisation_clips_and_counts() -> None:
    q, clipped = sa.quantise(np.array([-5.0, 0.25, 7.0]), 2.0, 0.5)
    assert clipped == 2
    assert list(sa.dequantise(q, 0.5)) == [-2.0, 0.0, 2.0]  # 0.25/0.5 rounds half to even
    with pytest.raises(ValueError):
        sa.quantise(np.array([np.nan]), 1.0, 0.1)
    assert sa.fits(1000, 1e15, 1e-10) and not sa.fits(1000, 1e20, 1e-10)
    assert sa.count_of(sa.counter(3 * 2**32 + 5) + sa.counter(7)) == 3 * 2**32 + 12
    assert sa.count_of(sa.counter(5, 1) + sa.counter(7, 1), 1) == 12
    one, _ = sa.quantise(np.array([-1.25, 3.5]), 10.0, 0.25, limbs=1)
    assert one.shape == (2, 1) and list(sa.dequantise(one + one, 0.25, 1)) == [-2.5, 7.0]
    assert sa.limbs_for(46, 1e9, 1e-8) == 1 and sa.limbs_for(47, 1e9, 1e-8) == 2


def test_the_fixed_point_spans_95_bits() -> None:
    """Sums of squares near 1e14 and values near 1e-9 in one vector, 1,000 clients."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-1e14, 1e14, 50), rng.uniform(-1e-9, 1e-9, 50),
                        [-1e14, 1e14, 0.0, -3e-10]])
    total = np.zeros((len(x), 2), dtype=np.uint64)
    for _ in range(1000):
        q, clipped = sa.quantise(x, 1e15, 1e-10)
        total += q
        assert clipped == 0
    got = sa.dequantise(total, 1e-10)
    exact = 1000 * x
    assert np.all(np.abs(got - exact) <= 1000 * 1e-10 / 2 + np.abs(exact) * 2**-52)


def test_shamir_needs_the_threshold_and_rebuilds_keys() -> None:
    secret = os.urandom(32)
    shares = sa.split(secret, 3, 5)
    assert sa.combine({i + 1: shares[i] for i in (0, 2, 4)}, 3) == secret
    assert sa.combine({i + 1: shares[i] for i in range(5)}, 3) == secret
    assert sa.combine({i + 1: shares[i] for i in (0, 1)}, 2) != secret  # two of a 3-sharing
    with pytest.raises(sa.SecAggError):
        sa.combine({1: shares[0], 2: shares[1]}, 3)


def test_combining_many_secrets_at_once_gives_each_one() -> None:
    secrets = [os.urandom(16) for _ in range(6)] + [os.urandom(32) for _ in range(2)]
    shares = [sa.split(s, 4, 7) for s in secrets]
    same = [{i + 1: sh[i] for i in (0, 2, 3, 5, 6)} for sh in shares]  # the same five holders
    assert sa.combine_all(same, 4) == secrets
    mixed = [{i + 1: sh[i] for i in ((0, 1, 2, 3) if n % 2 else (3, 4, 5, 6))}
             for n, sh in enumerate(shares)]  # other holders for every other secret
    assert sa.combine_all(mixed, 4) == secrets
    assert sa.combine_all([], 4) == []
    with pytest.raises(sa.SecAggError):
        sa.combine_all([{1: shares[0][0], 2: shares[0][1]}], 3)


def test_threshold_is_a_strict_majority() -> None:
    assert [sa.threshold(n) for n in (2, 3, 4, 5, 10)] == [2, 2, 3, 3, 6]
    for n in range(2, 50):
        assert 2 * sa.threshold(n) > n  # two disjoint groups can never both reach it


def test_sealed_shares_are_bound_to_their_pair_and_round() -> None:
    (a_sk, a_pk), (b_sk, b_pk), (c_sk, _c_pk) = (sa.new_keypair() for _ in range(3))
    key = sa.agree(a_sk, b_pk, "share", "round-1")
    blob = sa.seal(key, b"share", b"round-1|a|b")
    assert sa.open_sealed(sa.agree(b_sk, a_pk, "share", "round-1"), blob, b"round-1|a|b") == b"share"
    for wrong_key, aad in ((sa.agree(c_sk, a_pk, "share", "round-1"), b"round-1|a|b"),
                           (sa.agree(b_sk, a_pk, "share", "round-2"), b"round-1|a|b"),
                           (key, b"round-1|a|c")):
        with pytest.raises(sa.SecAggError):
            sa.open_sealed(wrong_key, blob, aad)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(sa.SecAggError):
        sa.open_sealed(key, tampered, b"round-1|a|b")
