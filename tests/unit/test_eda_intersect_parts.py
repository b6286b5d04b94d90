"""EDA intersect mode's parts: encrypted inner products, fields, noise, derived distributions,
configuration and costs."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.eda_intersect import _he
from jupyter_fed.packages.eda_intersect._derive import derive
from jupyter_fed.packages.eda_intersect._fields import (
    FieldSpec,
    block_noise,
    fields_of,
    quant_bits,
    release_pair,
)
from jupyter_fed.packages.eda_intersect.config import pairs_of, parse_data, privacy_cost


def test_encrypted_inner_products_equal_the_plain_ones_and_only_totals_show() -> None:
    rng = np.random.default_rng(0)
    owner = rng.integers(-4096, 4097, size=(900, 7))
    other = rng.integers(-4096, 4097, size=(900, 3))
    key = _he.new_context()
    chunks = _he.encrypt_fields(key, owner)
    public = _he.public_context(key)
    noise = np.arange(21, dtype=np.int64).reshape(3, 7)

    back = _he.evaluate(public, chunks, 7, other, noise)
    totals = _he.decrypt_sums(_he.secret_bytes(key), back, 7)

    assert len(chunks) == 1  # 1,170 rows of 7 fields fit one ciphertext
    assert np.array_equal(totals, other.T @ owner + noise)
    # what the key owner decrypts, slot by slot, is masked: no slot is a row's product
    import tenseal as ts

    slots = np.asarray(ts.bfv_vector_from(key, back[0]).decrypt()).reshape(-1, 7)[:900]
    assert not (slots == other[:, :1] * owner).all(axis=1).any()
    assert not ts.context_from(public).is_private()


def test_the_evaluator_refuses_a_payload_that_does_not_match_its_rows() -> None:
    key = _he.new_context()
    chunks = _he.encrypt_fields(key, np.ones((10, 4), dtype=np.int64))

    with pytest.raises(ConfigError, match="expected 1"):
        _he.evaluate(_he.public_context(key), chunks * 2, 4, np.ones((10, 2), np.int64),
                     np.zeros((2, 4), np.int64))
    with pytest.raises(ConfigError, match="malformed"):
        _he.unpack({"ct": np.zeros(5, np.uint8), "ct_sizes": np.array([9])})


def test_zero_sum_masks_are_uniform_and_cancel() -> None:
    masks = _he.zero_sum_masks(1000, 3)

    assert (np.mod(masks.sum(axis=0), _he.PLAIN_MODULUS) == 0).all()
    assert 0.4 < masks[:-1].mean() / _he.PLAIN_MODULUS < 0.6


def test_fields_one_hot_clipped_values_and_missing_rows() -> None:
    num = FieldSpec("a", "x", "numeric", -2.0, 2.0, 4)
    cat = FieldSpec("b", "g", "categorical", values=[0.0, 2.0])

    f = fields_of(np.array([-5.0, -1.5, 0.1, 9.0, np.nan]), num, 10)
    g = fields_of(np.array([0.0, 1.0, 2.0, np.nan]), cat, 10)

    assert f[:, :4].tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                 [0, 0, 0, 0]]
    assert f[:, 4].tolist() == [-1024, -768, 51, 1024, 0]
    assert g.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0]]  # 1.0 is "other"
    assert num.labels()[0] == "[-2, -1)" and cat.labels() == [0.0, 2.0, "other"]


def test_fixed_point_leaves_room_for_the_rows_and_the_noise() -> None:
    assert quant_bits(3000) == 12
    assert quant_bits(10_000_000) == 8
    for n in (10, 3000, 100_000, 10_000_000):
        assert n * 4 ** quant_bits(n) < _he.PLAIN_MODULUS / 16


def test_pair_release_scales_back_and_suppresses_small_cells() -> None:
    x = FieldSpec("a", "x", "numeric", 0.0, 4.0, 2)
    y = FieldSpec("b", "y", "numeric", -1.0, 1.0, 2)
    q = 4
    rx = fields_of(np.array([0.5, 1.5, 3.5] * 10), x, q)
    ry = fields_of(np.array([-0.5, 0.5, 0.5] * 10), y, q)

    out = release_pair(ry.T @ rx, x, y, 1.0, q, k=5)
    hidden = release_pair(ry.T @ rx, x, y, 1.0, q, k=15)
    noise = block_noise(x, y, 1.0, q)

    assert out["counts"] == [[10.0, 10.0], [0.0, 10.0]] and out["count_x"] == [20.0, 10.0]
    assert hidden["counts"] == [[0.0, 0.0], [0.0, 0.0]] and hidden["suppressed"] == 3
    assert hidden["count_x"] == [20.0, 0.0]  # group sizes: suppressed below k too
    assert out["sum_xy"] == pytest.approx(((np.array([0.5, 1.5, 3.5]) - 2) *
                                           np.array([-0.5, 0.5, 0.5])).sum() * 10, abs=0.05)
    assert noise.shape == (3, 3) and noise.dtype == np.int64


def test_derived_sum_of_uniform_cells_is_exact() -> None:
    counts = np.array([[100.0, 0.0], [0.0, 100.0]])  # x, y both in [0,1) or both in [1,2)

    edges, hist, dropped = derive(counts, (0.0, 2.0), (0.0, 2.0), "+", bins=4)
    mids = (edges[1:] + edges[:-1]) / 2

    assert dropped == 0 and hist.sum() == pytest.approx(200)
    assert (mids * hist).sum() / hist.sum() == pytest.approx(2.0)
    _, _, dropped = derive(counts, (0.0, 2.0), (-1.0, 1.0), "/", bins=4)
    assert dropped > 0  # divisor cells around 0 are left out, and said to be


def test_config_pairs_like_the_reference_and_names_bad_fields() -> None:
    data = parse_data({"prl_session_id": "abc", "active": [], "passive": {"columns": ["x1"]},
                       "paired_columns": {"passive": ["x1", "x5"], "active": ["x0", "x2"]}})

    pairs = {(a[1], b[1]) for a, b in pairs_of(data)}
    assert pairs == {("x0", "x2"), ("x0", "x1"), ("x0", "x5"), ("x2", "x1"), ("x2", "x5"),
                     ("x1", "x5")}
    with pytest.raises(ConfigError, match="paired_columns names client 'c'") as bad:
        parse_data({"prl_session_id": "abc", "a": [], "b": [], "paired_columns": {"c": ["x"]}})
    assert bad.value.details[0]["field"] == "data_config.paired_columns"
    with pytest.raises(ConfigError, match="prl_session_id"):
        parse_data({"a": [], "b": []})


def test_each_pair_step_costs_its_share_and_decrypt_reads_nothing() -> None:
    model = {"epsilon": 2.0, "pair_epsilon": 3.0}

    describe = privacy_cost("describe", {"model_config": model}, {})
    encrypt = privacy_cost("encrypt", {"model_config": model, "pairs": [[0, 0], [0, 1]],
                                       "total_pairs": 6}, {})
    decrypt = privacy_cost("decrypt", {"model_config": model}, {})

    assert describe["data"].epsilon == 2.0
    assert encrypt["data"].epsilon == pytest.approx(1.0)
    assert decrypt["data"].epsilon == 0 and not decrypt["data"].reads
    with pytest.raises(ValueError):
        privacy_cost("evaluate", {"model_config": model, "pairs": [[0, 0]] * 3,
                                  "total_pairs": 2}, {})
