"""Mergeable moments are exact: merged silos equal the pooled rows, whatever the batching."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_fed.packages.stats._moments import BitWriter, CondMoments, Moments, Stats, merge_all

RTOL = 1e-9


def rows(seed: int, n: int, p: int = 5, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) @ rng.normal(size=(p, p)) + offset
    x[:, -1] = rng.random(n) < 0.4  # a binary column
    return x


def pooled_check(m: Moments, x: np.ndarray) -> None:
    assert m.n == len(x)
    np.testing.assert_allclose(m.mean, x.mean(axis=0), rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(m.m2 / m.n, np.cov(x, rowvar=False, bias=True), rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(m.sums, x.sum(axis=0), rtol=RTOL, atol=1e-9)
    np.testing.assert_allclose(m.xtx, x.T @ x, rtol=RTOL, atol=1e-9)


def test_merging_silos_equals_the_pooled_rows() -> None:
    # Prepare
    silos = [rows(1, 700), rows(2, 1300), rows(3, 5)]

    # Execute
    merged = Moments.of(silos[0]).merge(Moments.of(silos[1])).merge(Moments.of(silos[2]))

    # Assert
    pooled_check(merged, np.concatenate(silos))


@pytest.mark.parametrize("batch", [1, 7, 64, 999, 5000])
def test_many_small_batches_equal_one_batch(batch: int) -> None:
    x = rows(4, 2003)
    acc = Moments.empty(x.shape[1])

    for start in range(0, len(x), batch):
        acc = acc.merge(Moments.of(x[start:start + batch]))

    one = Moments.of(x)
    assert acc.n == one.n
    np.testing.assert_allclose(acc.mean, one.mean, rtol=RTOL, atol=1e-13)
    np.testing.assert_allclose(acc.m2, one.m2, rtol=RTOL, atol=1e-10)


def test_large_offsets_keep_every_digit_of_the_variance() -> None:
    # mean 1e6, spread ~2 (sensor offsets, incomes): Σx² - n·mean² cancels ~10 of 16 digits
    x = rows(5, 3000, offset=1e6)
    x[:, -1] = x[:, -1] > x[:, -1].mean()
    acc = Moments.empty(x.shape[1])
    for start in range(0, len(x), 128):
        acc = acc.merge(Moments.of(x[start:start + 128]))

    centred = x - x.mean(axis=0)
    np.testing.assert_allclose(acc.m2, centred.T @ centred, rtol=RTOL)
    naive = (x.T @ x - len(x) * np.outer(x.mean(0), x.mean(0)))[0, 0]
    assert abs(naive / (centred[:, 0] @ centred[:, 0]) - 1) > 1e-7  # what the centred form avoids


def test_complement_follows_by_subtraction() -> None:
    x = rows(6, 1500)
    ones = x[:, -1] == 1

    rest = Moments.of(x).minus(Moments.of(x[ones]))

    pooled_check(rest, x[~ones])
    assert Moments.of(x).minus(Moments.of(x)).n == 0


def test_union_of_columns_leaves_missing_ones_undefined() -> None:
    a, b = rows(7, 400, 3), rows(8, 600, 3)
    sa = Stats(["x", "y", "z"], Moments.of(a), np.full(3, 400.0))
    sb = Stats(["y", "x", "w"], Moments.of(b), np.full(3, 600.0))

    merged = merge_all([sa, sb])

    assert merged.columns == ["x", "y", "z", "w"]
    assert merged.count.tolist() == [1000, 1000, 400, 600]
    both = np.concatenate([a[:, [0, 1]], b[:, [1, 0]]])
    np.testing.assert_allclose(merged.total.mean[:2], both.mean(axis=0), rtol=RTOL)
    assert np.isnan(merged.total.mean[2:]).all() and np.isnan(merged.total.m2[2, :]).all()
    assert not np.isnan(merged.total.m2[:2, :2]).any()


def test_tensors_round_trip_and_check_shapes() -> None:
    x = rows(9, 300)
    ones = Moments.of(x[x[:, -1] == 1])
    s = Stats(list("abcde"), Moments.of(x), np.full(5, 300.0), ["e"],
              {"e": CondMoments(ones.n, ones.mean, ones.ss)})

    arrays, meta = s.to_tensors("p/")
    back = Stats.from_tensors(arrays, meta, "p/")

    assert back.columns == s.columns and back.binary == ["e"] and list(back.cond) == ["e"]
    np.testing.assert_array_equal(back.cond["e"].ss, s.cond["e"].ss)
    assert arrays["p/cond_ss"].shape == (1, 5)  # one row per block: O(b·p), not O(b·p²)
    arrays["p/m2"] = arrays["p/m2"][:3]
    with pytest.raises(ValueError):
        Stats.from_tensors(arrays, meta, "p/")


def test_bitwriter_packs_blocks_of_any_length() -> None:
    rng = np.random.default_rng(0)
    bits = rng.random(1001) < 0.3
    w = BitWriter()

    for start in (0, 3, 10, 17, 500, 1001):
        w.add(bits[start:{0: 3, 3: 10, 10: 17, 17: 500, 500: 1001, 1001: 1001}[start]])

    assert w.nbits == 1001
    assert np.unpackbits(w.finish(), count=1001).astype(bool).tolist() == bits.tolist()
