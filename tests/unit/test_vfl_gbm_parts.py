"""vfl_gbm's pieces without runners: Paillier packing of gradients, sums, bins as scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.vfl_gbm import _bins, _paillier


@pytest.fixture(scope="module")
def keys():
    return _paillier.keypair(1024)


def test_packed_gradient_and_hessian_sums_decrypt_exactly(keys) -> None:
    pub, priv = keys
    rng = np.random.default_rng(1)
    g, h = rng.normal(size=40) * 3, rng.uniform(size=40)
    cts = _paillier.from_bytes(_paillier.encrypt_rows(pub, g, h), pub.n)
    groups = np.array([i % 3 if i % 5 else -1 for i in range(40)])
    sums = _paillier.subset_sums(pub.n, cts, groups, 4)  # group 3 is empty
    assert sums[3] == 1
    got = _paillier.decrypt_sums(priv, sums)
    for k in range(3):
        assert got[k, 0] == pytest.approx(g[groups == k].sum(), abs=1e-8)
        assert got[k, 1] == pytest.approx(h[groups == k].sum(), abs=1e-8)
    assert got[3].tolist() == [0.0, 0.0]
    # re-randomised: a sum is not the plain product of the label party's own ciphertexts
    nsq = pub.n ** 2
    plain = 1
    for r in np.flatnonzero(groups == 0):
        plain = plain * cts[r] % nsq
    assert sums[0] != plain


def test_the_key_holders_crt_encryption_decrypts_and_sums_as_phes(keys) -> None:
    pub, priv = keys
    rng = np.random.default_rng(2)
    g, h = rng.normal(size=30), rng.uniform(size=30)
    fast = _paillier.from_bytes(_paillier.encrypt_rows(pub, g, h, priv), pub.n)
    slow = _paillier.from_bytes(_paillier.encrypt_rows(pub, g, h), pub.n)
    assert len(set(fast)) == 30 and not set(fast) & set(slow)  # fresh randomness each
    np.testing.assert_array_equal(_paillier.decrypt_sums(priv, fast),
                                  _paillier.decrypt_sums(priv, slow))
    groups = np.arange(30) % 2
    mixed = _paillier.subset_sums(pub.n, fast[:15] + slow[15:], groups, 2)
    got = _paillier.decrypt_sums(priv, mixed)
    assert got[0, 0] == pytest.approx(g[groups == 0].sum(), abs=1e-8)
    assert got[1, 1] == pytest.approx(h[groups == 1].sum(), abs=1e-8)


def test_ciphertexts_are_checked_and_fresh(keys) -> None:
    pub, _ = keys
    a = _paillier.encrypt_rows(pub, np.zeros(2), np.zeros(2))
    assert not np.array_equal(a[0], a[1])  # same plaintext, different ciphertexts
    with pytest.raises(ConfigError):
        _paillier.from_bytes(a[:, 1:], pub.n)
    with pytest.raises(ConfigError):
        _paillier.encrypt_rows(pub, np.zeros(1), -np.ones(1))


def test_bins_are_scikit_learns() -> None:
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

    rng = np.random.default_rng(2)
    x = np.column_stack([rng.normal(size=3000), rng.integers(0, 5, 3000).astype(float),
                         rng.exponential(size=3000)])
    ours = _bins.edges(x, 64, 0)
    mapper = _BinMapper(n_bins=65).fit(x)
    for a, b in zip(ours, mapper.bin_thresholds_, strict=True):
        np.testing.assert_allclose(a, b)
    np.testing.assert_array_equal(_bins.codes(x, ours).T, mapper.transform(x))
    with pytest.raises(ConfigError, match="missing"):
        _bins.codes(np.array([[np.nan]]), ours[:1])
