"""gbm's parts: the sketches against the ddsketch library and what of them leaves a runner, the
histograms' small-group rule, evaluation grants, the worker memo, the scikit-learn estimator,
and the privacy declarations."""

from __future__ import annotations

import pickle
import uuid

import numpy as np
import pandas as pd
import pytest
from plan_harness import dataset, run_plan

from jupyter_fed.packages import get_package
from jupyter_fed.packages.base import StepContext
from jupyter_fed.packages.gbm import _memo, _sketch, local
from jupyter_fed.packages.gbm._grow import Grower
from jupyter_fed.packages.gbm._hist import histograms
from jupyter_fed.privacy.accounting import DatasetFacts

ALPHA = 0.001


def test_sketch_keys_and_quantiles_are_the_librarys() -> None:
    from ddsketch import DDSketch

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.lognormal(0, 2, 3000), -rng.lognormal(1, 1, 1000), np.zeros(50)])
    mapping = _sketch.mapping(ALPHA)

    positive = values[values > 0]
    same = _sketch.keys_of(positive, ALPHA) == np.array([mapping.key(v) for v in positive])
    assert same.mean() > 0.999  # a last-ulp difference of log2 at a bucket boundary at most

    ref = DDSketch(ALPHA)
    for v in values:
        ref.add(float(v))
    sign, keys, counts = _sketch.column_sketch(values, ALPHA, k=1)  # nothing coarsened
    assert counts.sum() == len(values)
    reps = _sketch.representatives(sign, keys, ALPHA)
    for q in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        mine = reps[_sketch.quantile_positions(counts, np.array([q]))[0]]
        theirs = ref.get_quantile_value(q)
        assert mine == pytest.approx(theirs, rel=2 * ALPHA, abs=1e-12), q
        rank = q * (len(values) - 1)  # the guarantee: within alpha of the order statistic
        near = np.sort(values)[[int(np.floor(rank)), int(np.ceil(rank))]]
        assert np.min(np.abs(mine - near) - ALPHA * np.abs(near) * 1.01) <= 1e-12, q


def test_small_buckets_are_pooled_and_an_extreme_value_never_leaves() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(size=4000), [1e6, -5e5]])

    sign, keys, counts = _sketch.column_sketch(values, ALPHA, k=10)

    reps = _sketch.representatives(sign, keys, ALPHA)
    assert counts.min() >= 10 and counts.sum() == len(values)
    assert np.all(np.diff(reps) > 0)  # still a sketch: buckets in value order
    assert reps.max() < 5 and reps.min() > -5  # the extremes are hidden in their groups
    # what the coordinator would see without pooling: the outlier to 0.1 %
    raw = _sketch.representatives(*_sketch.column_sketch(values, ALPHA, k=1)[:2], ALPHA)
    assert raw.max() == pytest.approx(1e6, rel=ALPHA)


def test_edges_from_merged_sketches_are_the_pooled_quantiles() -> None:
    rng = np.random.default_rng(2)
    silos = [rng.normal(0, 1, 5000), rng.normal(1, 2, 3000), rng.exponential(1, 2000)]
    parts = [_sketch.column_sketch(v, ALPHA, k=10) for v in silos]

    edges = _sketch.edges_from_sketches(*(np.concatenate([p[i] for p in parts]) for i in range(3)),
                                        ALPHA, max_bins=64)

    pooled = np.concatenate(silos)
    assert len(edges) == 63 and np.all(np.diff(edges) > 0)
    share = np.searchsorted(np.sort(pooled), edges) / len(pooled)
    np.testing.assert_allclose(share, np.arange(1, 64) / 64, atol=0.004)  # a group of 10 rows
    few = _sketch.edges_from_sketches(np.array([1, 1, 1], np.int8),
                                      _sketch.keys_of(np.array([1.0, 2.0, 3.0]), ALPHA),
                                      np.array([20.0, 20, 20]), ALPHA, 255)
    np.testing.assert_allclose(few, [1.5, 2.5], rtol=2 * ALPHA)  # few values: midpoints


def test_a_node_pair_is_withheld_when_either_child_is_small_here() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 8, size=(2, 200)).astype(np.uint8)
    codes[0, :3] = 7  # three rows on the right of a split at bin 6 of predictor 0
    codes[0, 3:] = np.minimum(codes[0, 3:], 6)
    feature = np.full((1, 7), -1, np.int32)
    bins = np.zeros((1, 7), np.uint8)
    feature[0, 0], bins[0, 0] = 0, 6
    ask = np.zeros((1, 7), bool)
    ask[0, 2] = True  # the small child (3 rows)
    g, h = rng.normal(size=(200, 1)), np.full((200, 1), 0.25)

    hist, withheld = histograms(codes, g, h, feature, bins, ask, 1, 8, minimum=10)
    assert withheld == [0] and not hist.any()

    ask[0, 2], ask[0, 1] = False, True  # asking for the big child: its sibling is derivable
    hist, withheld = histograms(codes, g, h, feature, bins, ask, 1, 8, minimum=10)
    assert withheld == [0] and not hist.any()

    hist, withheld = histograms(codes, g, h, feature, bins, ask, 1, 8, minimum=3)
    assert withheld == [] and hist[0, :, :, 2].sum() == 2 * 197


@pytest.mark.parametrize("constant_hessian", [False, True])
def test_the_compiled_histograms_are_the_bincount_ones(constant_hessian: bool) -> None:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 32, size=(6, 3000)).astype(np.uint8)
    g = rng.normal(size=(3000, 2))
    h = None if constant_hessian else rng.random((3000, 2))
    feature = np.full((2, 15), -1, np.int32)
    bins = np.zeros((2, 15), np.uint8)
    feature[:, :3], bins[:, :3] = [[0, 3, 5], [1, 2, 4]], [[16, 8, 20], [10, 25, 3]]
    feature[1, 2] = -1  # a leaf above level 2: its rows stay there
    ask = np.zeros((2, 15), bool)
    ask[0, [3, 6]] = ask[1, [4]] = True

    fast, held = histograms(codes, g, h, feature, bins, ask, 2, 32, minimum=5)
    slow, held_slow = histograms(codes, g, h, feature, bins, ask, 2, 32, minimum=5,
                                 compiled=False)

    assert held == held_slow
    np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-4)  # float32 gradients
    assert fast[..., 2].sum() > 0 and (fast[..., 2] == slow[..., 2]).all()  # counts exact
    with pytest.raises(ValueError, match="bin code"):
        histograms(codes, g, h, feature, bins, ask, 2, 16, minimum=5)


def test_the_rows_slots_continue_from_the_last_level_and_restart_when_a_split_changed() -> None:
    from jupyter_fed.packages.gbm._trees import route

    rng = np.random.default_rng(6)
    codes = rng.integers(0, 16, size=(3, 500)).astype(np.uint8)
    feature = np.full((1, 15), -1, np.int32)
    bins = np.zeros((1, 15), np.uint8)
    memo = _memo.Memo()
    key = ("file", 1, 2, ("x",))
    feature[0, 0], bins[0, 0] = 0, 7
    one = _memo.tree_nodes(key, "m", feature, bins, codes, 1, memo)
    feature[0, 1:3], bins[0, 1:3] = [1, 2], [4, 11]
    two = _memo.tree_nodes(key, "m", feature, bins, codes, 2, memo)
    np.testing.assert_array_equal(one[0], route(feature[0], bins[0], codes, 1))
    np.testing.assert_array_equal(two[0], route(feature[0], bins[0], codes, 2))

    bins[0, 0] = 3  # another root split (a retried iteration): the remembered slots are stale
    again = _memo.tree_nodes(key, "m", feature, bins, codes, 2, memo)
    np.testing.assert_array_equal(again[0], route(feature[0], bins[0], codes, 2))
    assert (again[0] != two[0]).any()


def test_the_grower_derives_siblings_and_leaves_withheld_pairs_unsplit() -> None:
    rng = np.random.default_rng(4)
    grower = Grower(1, 3, np.array([4, 4]), min_samples_leaf=1, l2=0.0, learning_rate=1.0,
                    constant_hessian=False)
    root = np.zeros((1, 2, 4, 3))
    root[0, :, :, 2] = 10
    root[0, :, :, 1] = 2.5
    root[0, 0, :, 0] = [-5, -4, 4, 5]  # predictor 0 separates the gradients at bin 1
    root[0, 1, :, 0] = rng.normal(size=4) * 0 + 0.0
    grower.split(root, [])
    assert grower.feature[0, 0] == 0 and grower.bin[0, 0] == 1
    assert grower.open_nodes() == [(0, 1)]  # the smaller child (a tie: the left one)

    grower.split(np.zeros((1, 2, 4, 3)), withheld=[0])
    assert (grower.feature[0, 1:3] == -1).all() and not grower.open.any()
    tree = grower.finish(np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]))
    assert tree["value"][0, 1] == pytest.approx(9 / 5) and tree["value"][0, 2] == \
        pytest.approx(-9 / 5)  # -G/H of each child, from the root's histogram
    assert tree["threshold"][0, 0] == 1.0


def clients(tmp_path, n: int = 600, test: bool = True):
    rng = np.random.default_rng(5)
    tag = uuid.uuid4().hex[:8]
    out = {}
    for i in range(2):
        x = rng.normal(size=(n, 3))
        f = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=(x[:, 0] + x[:, 1] > 0).astype(int))
        roles = {"train": dataset(tmp_path, f"p{i}_{tag}", f)}
        if test:
            roles["test"] = dataset(tmp_path, f"pt{i}_{tag}", f.iloc[: n // 2])
        out[f"r{i}/p{i}"] = roles
    return out


DATA = {"predictors": ["a", "b", "c"], "target": "y"}
CONFIG = {"model": {"params": {"max_depth": 2, "max_iter": 4}}}


def test_a_noisy_evaluation_grant_gets_no_exact_metrics(tmp_path) -> None:
    io = run_plan("gbm", CONFIG, DATA, clients(tmp_path), 4)
    model = io.model()
    roles = next(iter(io.datasets.values()))
    params = {"model_config": CONFIG, "data_config": DATA, "n_classes": 2}
    grant = {"test": {"grant": {"evaluation": "noisy", "evaluation_epsilon": 1.0,
                                "evaluation_loss_bound": 10.0}}}

    exact = local.evaluate(StepContext("t1", 5), roles, params, model.ensemble.tensors(True))
    noisy = local.evaluate(StepContext("t2", 5, policy=grant), roles, params,
                           model.ensemble.tensors(True))

    assert {"test_roc_auc", "test_accuracy", "test_loss"} <= set(exact.outputs["metrics"])
    metrics = noisy.outputs["metrics"]
    assert "test_roc_auc" not in metrics and metrics["test_noisy_epsilon"] == 1.0
    assert noisy.outputs["diagnostics"] == {}


def test_the_worker_memo_changes_no_answer(tmp_path) -> None:
    io = run_plan("gbm", CONFIG, DATA, clients(tmp_path), 4)
    ens = io.model().ensemble
    roles = next(iter(io.datasets.values()))
    grower = Grower(1, 2, ens.n_edges + 1, min_samples_leaf=20, l2=0.0, learning_rate=0.1,
                    constant_hessian=False)
    params = {"model_config": CONFIG, "data_config": DATA, "n_classes": 2, "level": 0,
              "bins": grower.bins}
    tensors = {**ens.tensors(True), **grower.tensors()}

    warm = local.grow(StepContext("w", 5), roles, params, tensors)
    _memo.MEMO.clear()
    cold = local.grow(StepContext("c", 5), roles, params, tensors)

    np.testing.assert_array_equal(warm.tensors["hist"], cold.tensors["hist"])
    assert warm.outputs["metrics"] == cold.outputs["metrics"]


def test_the_estimator_behaves_like_scikit_learns(tmp_path) -> None:
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, get_scorer, roc_auc_score

    io = run_plan("gbm", {"model": {"params": {"max_depth": 3, "max_iter": 10}}}, DATA,
                  clients(tmp_path, 1000), 10)
    model = io.model()
    est = model.as_sklearn()
    rows = pd.concat([pd.read_parquet(r["train"].path) for r in io.datasets.values()])
    x, y = rows[["a", "b", "c"]], rows.y.to_numpy()

    assert est.n_features_in_ == 3 and list(est.classes_) == [0, 1]
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_allclose(est.predict_proba(x), est.predict_proba(x.to_numpy()))
    np.testing.assert_allclose(est.predict_proba(x)[:, 1], model.predict(x)[:, 1])
    assert est.score(x, y) == accuracy_score(y, est.predict(x)) > 0.9
    assert get_scorer("roc_auc")(est, x, y) == roc_auc_score(y, est.predict_proba(x)[:, 1])
    importance = permutation_importance(est, x, y, n_repeats=3, random_state=0)
    assert importance.importances_mean[2] < importance.importances_mean[0]  # c is noise
    assert est.feature_importances_.sum() == pytest.approx(1.0)
    assert est.feature_importances_[2] < est.feature_importances_[0]
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(x), est.predict_proba(x))
    with pytest.raises(ValueError, match="expects 3"):
        est.predict(np.zeros((2, 4)))
    with pytest.raises(NotImplementedError, match="no PyTorch form"):
        model.as_pytorch()
    assert "GBMModel(10 iteration(s)" in repr(model)


def test_steps_declare_their_privacy_costs() -> None:
    spec = get_package("iai_gbm")
    facts = {"train": DatasetFacts(1000, 1e-6), "test": DatasetFacts(500, 1e-6)}
    params = {"model_config": {}, "data_config": DATA}

    sketch = spec.privacy_cost_of("sketch", params, facts)
    first = spec.privacy_cost_of("grow", {**params, "level": 0}, facts)
    deeper = spec.privacy_cost_of("grow", {**params, "level": 2}, facts)
    final = spec.privacy_cost_of("evaluate", params, {"train": facts["train"]})

    assert not sketch["train"].spends and not sketch["train"].trains and "test" not in sketch
    assert first["train"].trains and first["test"].evaluation and not first["train"].evaluation
    assert deeper["train"].trains and "test" not in deeper
    assert final["train"].evaluation  # no test set: the training rows are measured
    assert spec.resource_estimate_of("grow", {**params, "n_classes": 2},
                                     {"train": 100_000}) > 100_000 * 3


def test_config_errors_name_the_field() -> None:
    from jupyter_fed.errors import ConfigError

    plan = get_package("gbm").load_plan()
    with pytest.raises(ConfigError, match=r"model_config\.strategy\.name"):
        plan({"strategy": {"name": "FedAvg"}}, DATA, 3)
    with pytest.raises(ConfigError, match="balance_train_datasets"):
        plan({"ml_task": {"type": "regression"}, "balance_train_datasets": True}, DATA, 3)
    with pytest.raises(ConfigError, match="max_bins"):
        plan({"model": {"params": {"max_bins": 300}}}, DATA, 3)


def test_the_memo_keeps_only_the_latest_models_per_dataset(tmp_path) -> None:
    _memo.MEMO.clear()
    run_plan("gbm", {"model": {"params": {"max_depth": 2, "max_iter": 12}}}, DATA,
             clients(tmp_path), 12)
    # per client: train and test codes and targets, two raw predictions each, one gradient pair,
    # the training rows' slots in the trees being grown
    assert len(_memo.MEMO._items) <= 2 * (2 + 2 + 2 + 2 + 1 + 1)
