"""vfl_gbm's dataset influence without runners: cover-weighted coalition walks of the trees
against a brute-force sum over root-to-leaf paths, and the running coalition predictions the
label party keeps between trees against a walk of every tree from scratch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jupyter_fed.packages._valuation import shapley
from jupyter_fed.packages.gbm import parts as gbm_parts
from jupyter_fed.packages.vfl_gbm import _forest, _valuation
from jupyter_fed.packages.vfl_gbm.config import VflGbmConfig

DEPTH = 4
OFFSETS = [0, 3, 5]
"""Three parties: global columns 0-2, 3-4 and 5-7."""


def random_tree(rng: np.random.Generator, depth: int = DEPTH, columns: int = 8
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ragged tree over slots: split columns (-1 at leaves), leaf values, row counts that add
    up (a child holds some of its parent's rows, at least one)."""
    m = 2 ** (depth + 1) - 1
    feature = np.full(m, -1, np.int32)
    count = np.zeros(m)
    value = np.zeros(m)
    count[0] = 1000
    for s in range(m):
        if count[s] == 0:
            continue
        lo, hi = 2 * s + 1, 2 * s + 2
        if hi < m and count[s] >= 2 and (s == 0 or rng.uniform() < 0.75):
            feature[s] = rng.integers(columns)
            count[lo] = rng.integers(1, int(count[s]))
            count[hi] = count[s] - count[lo]
        else:
            value[s] = rng.normal()
    return feature, value, count


def brute_force(right: np.ndarray, known: np.ndarray, feature: np.ndarray, value: np.ndarray,
                count: np.ndarray) -> np.ndarray:
    """Σ over leaves of value × Π over the path's splits of (known: did the row go that way;
    unknown: the child's share of the parent's training rows)."""
    out = np.zeros(len(right))
    for leaf in np.flatnonzero((feature < 0) & (count > 0)):
        path, s = [], int(leaf)
        while s > 0:
            parent = (s - 1) // 2
            path.append((parent, s == 2 * parent + 2))
            s = parent
        for i in range(len(right)):
            w = 1.0
            for parent, went_right in path:
                if known[parent]:
                    w *= float(right[i, parent] == went_right)
                else:
                    w *= count[2 * parent + 1 + went_right] / count[parent]
            out[i] += w * value[leaf]
    return out


def test_cover_weighted_walk_equals_the_sum_over_paths() -> None:
    rng = np.random.default_rng(4)
    for _ in range(20):
        feature, value, count = random_tree(rng)
        right = rng.uniform(size=(30, len(feature))) < 0.5
        owner = _forest.owners(feature, OFFSETS)
        for size in range(len(OFFSETS) + 1):
            for coalition in itertools.combinations(range(len(OFFSETS)), size):
                known = np.isin(owner, coalition)
                np.testing.assert_allclose(
                    _forest.expected(right, known, feature, value, count),
                    brute_force(right, known, feature, value, count), atol=1e-12)


def test_all_parties_give_the_prediction_and_none_the_mean_over_training_rows() -> None:
    rng = np.random.default_rng(5)
    feature, value, count = random_tree(rng)
    right = rng.uniform(size=(50, len(feature))) < 0.5
    every = np.ones(len(feature), bool)

    full = _forest.expected(right, every, feature, value, count)
    empty = _forest.expected(right, ~every, feature, value, count)

    np.testing.assert_allclose(full, value[_forest.walk(right, feature, DEPTH)])
    leaves = feature < 0
    np.testing.assert_allclose(empty, (count[leaves] * value[leaves]).sum() / count[0])


def test_owners_maps_global_columns_to_parties() -> None:
    feature = np.array([0, 2, 3, 4, 5, 7, -1])
    assert _forest.owners(feature, OFFSETS).tolist() == [0, 0, 1, 1, 2, 2, -1]


def _cfg(**influence) -> VflGbmConfig:
    return VflGbmConfig.model_validate({"prl_session_id": "x", "seed": 3,
                                        "influence_score": influence})


def _forest_arrays(rng: np.random.Generator, trees: int) -> dict[str, np.ndarray]:
    grown = [random_tree(rng) for _ in range(trees)]
    return {"trees.feature": np.stack([g[0] for g in grown]),
            "trees.bin": np.zeros((trees, len(grown[0][0])), np.uint8),
            "trees.value": np.stack([0.3 * g[1] for g in grown]),
            "trees.count": np.stack([g[2] for g in grown]), "baseline": np.array([-0.2])}


def _run(cfg: VflGbmConfig, full: dict[str, np.ndarray], rights: list[np.ndarray],
         y: np.ndarray, keep: bool) -> list[dict]:
    """tree_influence after each tree, as ``finish`` calls it; ``keep=False`` drops the running
    predictions every time (so every coalition is walked through every tree again)."""
    arrays = {"baseline": full["baseline"]}
    meta: dict = {}
    found = []
    for t in range(len(rights)):
        for k in ("feature", "bin", "value", "count"):
            arrays[f"trees.{k}"] = full[f"trees.{k}"][:t + 1]
        if not keep:
            meta.pop("infl_tree", None)
        # every split of party 0's columns is "given" (passive); parties 1, 2 decide from x
        owner = _forest.owners(arrays["trees.feature"][t], OFFSETS)
        given = {(t, int(m)): (~rights[t][:, m]).astype(np.uint8)
                 for m in np.flatnonzero(owner == 0)}

        def decide(tt: int, g: dict) -> np.ndarray:
            """Tree tt's decisions: party 0's only from the bits the label party kept."""
            r = rights[tt].copy()
            theirs = np.flatnonzero(_forest.owners(full["trees.feature"][tt], OFFSETS) == 0)
            assert {(tt, int(m)) for m in theirs} <= set(g)
            for m in theirs:
                r[:, m] = ~g[(tt, int(m))].astype(bool)
            return r

        found.append(_valuation.tree_influence(cfg, ["a", "b", "c"], OFFSETS, arrays, meta, t,
                                               y, rights[t], given, decide))
    return found


def _setup(seed: int, trees: int = 4, rows: int = 80) -> tuple[dict, list, np.ndarray]:
    rng = np.random.default_rng(seed)
    full = _forest_arrays(rng, trees)
    rights = [rng.uniform(size=(rows, full["trees.feature"].shape[1])) < 0.5
              for _ in range(trees)]
    return full, rights, (rng.uniform(size=rows) < 0.4).astype(float)


def test_running_predictions_equal_a_walk_of_every_tree_and_the_losses_are_gbms() -> None:
    full, rights, y = _setup(6)
    cfg = _cfg()

    found = _run(cfg, full, rights, y, keep=True)

    for t, got in enumerate(found):  # brute force: every coalition through every tree
        def loss(coalition: frozenset[int], t: int = t) -> float:
            raw = full["baseline"][0] + sum(_forest.expected(
                rights[u], np.isin(_forest.owners(full["trees.feature"][u], OFFSETS),
                                   sorted(coalition)),
                full["trees.feature"][u], full["trees.value"][u], full["trees.count"][u])
                for u in range(t + 1))
            return _valuation.loss(raw, y, True)

        want = shapley(["a", "b", "c"], loss)
        assert got["method"] == "exact" and got["evaluations"] == 8
        assert got["values"] == pytest.approx(want.values, abs=1e-12)
        assert sum(got["values"].values()) == pytest.approx(got["baseline_loss"] - got["loss"])
    raw = full["baseline"][0] + sum(
        full["trees.value"][t][_forest.walk(rights[t], full["trees.feature"][t], DEPTH)]
        for t in range(4))
    test_loss = gbm_parts.metrics(raw[:, None], y, True, 2, "test_")[0]["test_loss"]
    assert found[-1]["loss"] == pytest.approx(test_loss)


def test_coalitions_not_kept_are_walked_again_from_the_kept_validation_bits() -> None:
    full, rights, y = _setup(9)
    cfg = _cfg(params={"max_eval_len": 7})  # fewer than 2^3: the Monte-Carlo estimate

    kept = _run(cfg, full, rights, y, keep=True)
    fresh = _run(cfg, full, rights, y, keep=False)

    for a, b in zip(kept, fresh, strict=True):
        assert a["method"] == "monte_carlo"
        assert a["values"] == pytest.approx(b["values"], abs=1e-12)


def test_a_party_whose_columns_split_nothing_gets_zero() -> None:
    rng = np.random.default_rng(7)
    full = _forest_arrays(rng, 3)
    full["trees.feature"] = np.where(full["trees.feature"] >= 5, 0, full["trees.feature"])
    rights = [rng.uniform(size=(60, full["trees.feature"].shape[1])) < 0.5 for _ in range(3)]
    y = rng.normal(size=60)
    cfg = VflGbmConfig.model_validate({"prl_session_id": "x", "ml_task": {"type": "regression"}})

    found = _run(cfg, full, rights, y, keep=True)

    assert all(f["values"]["c"] == 0.0 for f in found)


def test_beyond_six_parties_the_estimate_is_monte_carlo() -> None:
    rng = np.random.default_rng(8)
    offsets = list(range(8))
    feature, value, count = random_tree(rng, columns=8)
    tree = _valuation.Tree(rng.uniform(size=(40, len(feature))) < 0.5,
                           _forest.owners(feature, offsets), feature, value, count)
    y = (rng.uniform(size=40) < 0.5).astype(float)

    out, kept = _valuation.influence(_cfg(params={"max_eval_len": 300}),
                                     [f"p{i}" for i in range(8)], y, 0.0, tree, {}, list, 1)

    assert out["method"] == "monte_carlo"
    assert len(kept) == (out["evaluations"] if out["evaluations"] <= _valuation.CACHED else 0)
    assert sum(out["values"].values()) == pytest.approx(out["baseline_loss"] - out["loss"],
                                                        rel=0.2, abs=1e-3)
