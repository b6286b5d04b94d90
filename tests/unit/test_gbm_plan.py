"""gbm's plan against its own runner steps (no network): the federated model against
scikit-learn's ``HistGradientBoosting*`` on the pooled rows, the metrics' shape, resume, early
stopping, the secure-sum path, and the session options."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from plan_harness import dataset, run_plan
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score


def frame(n: int, seed: int, task: str = "binary", features: int = 8) -> pd.DataFrame:
    """Rows a depth-limited tree must work for: interactions, thresholds, a sine."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    eta = 1.2 * x[:, 0] - 0.8 * x[:, 1] * x[:, 2] + np.where(x[:, 3] > 0.5, 1.0, -0.5) + \
        0.6 * np.sin(2 * x[:, 4])
    out = pd.DataFrame(x, columns=[f"x{j}" for j in range(features)])
    if task == "binary":
        out["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    elif task == "multiclass":
        out["y"] = np.digitize(eta + rng.normal(0, 0.7, n), [-0.5, 0.8])
    else:
        out["y"] = eta + rng.normal(0, 0.5, n)
    return out


def federation(tmp_path, frames: list[pd.DataFrame], tests: list[pd.DataFrame] | None = None):
    tag = uuid.uuid4().hex[:8]  # dataset names key the differencing memory: one per test
    clients = {}
    for i, f in enumerate(frames):
        roles = {"train": dataset(tmp_path, f"train{i}_{tag}", f)}
        if tests is not None:
            roles["test"] = dataset(tmp_path, f"test{i}_{tag}", tests[i])
        clients[f"r{i}/train{i}"] = roles
    return clients


PREDICTORS = [f"x{j}" for j in range(8)]
DATA = {"predictors": PREDICTORS, "target": "y"}


def sk_kwargs(params: dict) -> dict:
    return {"max_depth": params.get("max_depth", 4), "learning_rate": params.get("learning_rate", 0.1),
            "max_iter": params["max_iter"], "max_leaf_nodes": None, "early_stopping": False,
            "min_samples_leaf": params.get("min_samples_leaf", 20),
            "l2_regularization": params.get("l2_regularization", 0.0)}


def test_binary_model_matches_scikit_learn_on_the_pooled_rows(tmp_path) -> None:
    frames, tests = [frame(1500, 1), frame(2500, 2)], [frame(1000, 11), frame(1000, 12)]
    params = {"max_depth": 3, "learning_rate": 0.1, "max_iter": 25, "l2_regularization": 1.0}
    pooled, test = pd.concat(frames), pd.concat(tests)
    ref = HistGradientBoostingClassifier(**sk_kwargs(params)).fit(pooled[PREDICTORS], pooled.y)

    io = run_plan("iai_gbm", {"strategy": {"name": "HistGradientBoosting"},
                              "model": {"params": params}}, DATA,
                  federation(tmp_path, frames, tests), num_rounds=40)
    est = io.model().as_sklearn()

    mine = roc_auc_score(test.y, est.predict_proba(test[PREDICTORS])[:, 1])
    theirs = roc_auc_score(test.y, ref.predict_proba(test[PREDICTORS])[:, 1])
    assert abs(mine - theirs) < 0.01 and mine > 0.75
    assert est.n_iter_ == 25 and est.n_trees_per_iteration_ == 1
    # one metrics entry per model, the intercept-only model first; ffnet's names and prefixes
    assert [m.model_round for m in io.metrics] == list(range(26))
    assert io.metrics[0].federated["roc_auc"] == pytest.approx(0.5)
    last = io.metrics[-1]
    assert {"loss", "accuracy", "roc_auc"} <= set(last.federated)
    assert set(last.per_client) == {"r0/train0", "r1/train1"}
    assert {"test_loss", "test_accuracy", "test_roc_auc", "test_num_examples"} <= \
        set(last.per_client["r0/train0"])
    assert last.federated["loss"] < io.metrics[0].federated["loss"]
    assert [s for s in io.steps if s[0] == 1] == [(1, "grow")] * 3  # one exchange per level
    assert not io.warnings


def test_multiclass_grows_one_tree_per_class(tmp_path) -> None:
    frames, tests = [frame(2000, 3, "multiclass"), frame(1500, 4, "multiclass")], \
        [frame(800, 13, "multiclass"), frame(800, 14, "multiclass")]
    params = {"max_depth": 3, "max_iter": 20}
    pooled, test = pd.concat(frames), pd.concat(tests)
    ref = HistGradientBoostingClassifier(**sk_kwargs(params)).fit(pooled[PREDICTORS], pooled.y)

    io = run_plan("gbm", {"model": {"params": params}}, DATA, federation(tmp_path, frames, tests),
                  num_rounds=20)
    est = io.model().as_sklearn()

    assert est.n_trees_per_iteration_ == 3 and list(est.classes_) == [0, 1, 2]
    proba = est.predict_proba(test[PREDICTORS])
    assert proba.shape == (len(test), 3) and np.allclose(proba.sum(1), 1)
    mine = roc_auc_score(test.y, proba, multi_class="ovr")
    theirs = roc_auc_score(test.y, ref.predict_proba(test[PREDICTORS]), multi_class="ovr")
    assert abs(mine - theirs) < 0.01
    assert abs(est.score(test[PREDICTORS], test.y) - ref.score(test[PREDICTORS], test.y)) < 0.03


def test_regression_r2_matches_scikit_learn(tmp_path) -> None:
    frames, tests = [frame(2000, 5, "regression"), frame(2000, 6, "regression")], \
        [frame(1000, 15, "regression"), frame(1000, 16, "regression")]
    params = {"max_depth": 4, "learning_rate": 0.1, "max_iter": 30}
    pooled, test = pd.concat(frames), pd.concat(tests)
    ref = HistGradientBoostingRegressor(**sk_kwargs(params)).fit(pooled[PREDICTORS], pooled.y)

    io = run_plan("gbm", {"ml_task": {"type": "regression"}, "model": {"params": params}}, DATA,
                  federation(tmp_path, frames, tests), num_rounds=30)
    est = io.model().as_sklearn()

    mine = r2_score(test.y, est.predict(test[PREDICTORS]))
    assert abs(mine - ref.score(test[PREDICTORS], test.y)) < 0.01 and mine > 0.6
    assert {"loss", "r2"} <= set(io.metrics[-1].federated)
    assert est.score(test[PREDICTORS], test.y) == pytest.approx(mine)


def skewed(y: np.ndarray, parts: int, classification: bool) -> list[np.ndarray]:
    """Label skew: rows sorted by a noisy copy of the label (or the target's rank), cut in parts."""
    rng = np.random.default_rng(1)
    key = y.astype(float) if classification else np.argsort(np.argsort(y)) / len(y) * 2
    return np.array_split(np.argsort(key + rng.normal(0, 0.6, len(y))), parts)


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "digits", "diabetes"])
def test_bundled_datasets_split_across_three_runners_with_label_skew(tmp_path, name) -> None:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    d = getattr(datasets, f"load_{name}")()
    classification = name != "diabetes"
    cols = [f"f{j}" for j in range(d.data.shape[1])]
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.3, random_state=0,
                                          stratify=d.target if classification else None)
    frames = [pd.DataFrame(xtr[r], columns=cols).assign(y=ytr[r])
              for r in skewed(ytr, 3, classification)]
    params = {"max_depth": 3, "max_iter": 30}
    task = "classification" if classification else "regression"

    io = run_plan("gbm", {"ml_task": {"type": task}, "model": {"params": params}},
                  {"predictors": cols, "target": "y"}, federation(tmp_path, frames), 30)
    est = io.model().as_sklearn()

    kind = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    ref = kind(**sk_kwargs(params)).fit(xtr, ytr)
    if not classification:
        mine, theirs = est.score(xte, yte), ref.score(xte, yte)
    elif name == "breast_cancer":
        mine = roc_auc_score(yte, est.predict_proba(xte)[:, 1])
        theirs = roc_auc_score(yte, ref.predict_proba(xte)[:, 1])
    else:
        mine = roc_auc_score(yte, est.predict_proba(xte), multi_class="ovr")
        theirs = roc_auc_score(yte, ref.predict_proba(xte), multi_class="ovr")
    assert mine > theirs - 0.01, (mine, theirs)


def test_secure_aggregation_sums_the_histograms_through_the_engine(tmp_path) -> None:
    frames = [frame(1200, 7), frame(900, 8)]
    config = {"model": {"params": {"max_depth": 3, "max_iter": 6}}}
    clients = federation(tmp_path, frames)

    plain = run_plan("gbm", config, DATA, clients, 6)
    secure = run_plan("gbm", {**config, "secure_aggregation": True}, DATA, clients, 6)

    assert secure.secure_steps == sum(1 for _, name in secure.steps if name == "grow") > 0
    assert plain.secure_steps == 0
    for key, value in plain.artefact.tensors.items():
        np.testing.assert_array_equal(secure.artefact.tensors[key], value, err_msg=key)


def test_a_restarted_session_resumes_after_its_last_tree(tmp_path) -> None:
    clients = federation(tmp_path, [frame(1000, 9), frame(1000, 10)])
    config = {"model": {"params": {"max_depth": 3, "max_iter": 8}}}
    whole = run_plan("gbm", config, DATA, clients, 8)

    resumed = run_plan("gbm", config, DATA, clients, 8, checkpoint=whole.states[5])

    assert [s for s in resumed.steps if s[0] <= 5] == []  # nothing before the checkpoint again
    for key, value in whole.artefact.tensors.items():
        np.testing.assert_array_equal(resumed.artefact.tensors[key], value, err_msg=key)
    assert resumed.metrics[-1].federated == whole.metrics[-1].federated
    assert resumed.metrics[0].model_round == 5


def test_early_stopping_on_the_federated_validation_loss(tmp_path) -> None:
    rng = np.random.default_rng(0)
    noise = [frame(400, s).assign(y=rng.integers(0, 2, 400)) for s in (20, 21)]  # nothing to learn
    tests = [frame(300, s).assign(y=rng.integers(0, 2, 300)) for s in (22, 23)]
    params = {"max_depth": 4, "learning_rate": 0.5, "max_iter": 60, "min_samples_leaf": 5,
              "early_stopping": True, "n_iter_no_change": 3}

    io = run_plan("gbm", {"model": {"params": params},
                          "save_best_model": {"metric": "loss", "mode": "min"}},
                  DATA, federation(tmp_path, noise, tests), 60)

    losses = [m.federated["loss"] for m in io.metrics]
    assert io.done and len(losses) < 20
    assert min(losses[-3:]) >= losses[-4] - 1e-7  # three models without improvement
    assert io.model().n_iter_ == int(np.argmin(losses))  # the best model is handed back


def test_save_best_model_none_returns_the_last_model(tmp_path) -> None:
    clients = federation(tmp_path, [frame(800, 24), frame(800, 25)])
    io = run_plan("gbm", {"model": {"params": {"max_depth": 2, "max_iter": 5}},
                          "save_best_model": {"metric": None, "mode": "min"}}, DATA, clients, 10)
    assert io.model().n_iter_ == 5 and len(io.metrics) == 6  # max_iter caps num_rounds


def test_num_rounds_caps_max_iter_as_the_reference_counts_rounds_as_trees(tmp_path) -> None:
    clients = federation(tmp_path, [frame(600, 26), frame(600, 27)])
    io = run_plan("gbm", {"model": {"params": {"max_depth": 2, "max_iter": 100}}}, DATA,
                  clients, 4)
    assert io.model().n_iter_ == 4


def test_balanced_training_is_reproducible_by_seed(tmp_path) -> None:
    rng = np.random.default_rng(3)
    frames = [frame(1500, s).assign(y=(rng.random(1500) < 0.15).astype(int)) for s in (28, 29)]
    clients = federation(tmp_path, frames)

    def model(seed: int):
        return run_plan("gbm", {"model": {"params": {"max_depth": 3, "max_iter": 5}},
                                "balance_train_datasets": True, "seed": seed}, DATA, clients,
                        5).artefact.tensors

    first, again, other = model(7), model(7), model(8)

    for key, value in first.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    assert not np.array_equal(first["trees.value"], other["trees.value"])
    # balanced: the intercept-only model says 50/50 (class counts of the undersample)
    assert first["baseline"][0] == pytest.approx(0.0)


def test_one_class_is_refused_with_a_clear_message(tmp_path) -> None:
    from jupyter_fed.errors import SessionFailed

    frames = [frame(300, 30).assign(y=0), frame(300, 31).assign(y=0)]
    with pytest.raises(SessionFailed, match="at least two classes"):
        run_plan("gbm", {}, DATA, federation(tmp_path, frames), 3)


def test_a_client_dropped_below_the_root_restarts_the_iterations_trees(tmp_path) -> None:
    import asyncio

    from plan_harness import LocalIO

    from jupyter_fed.packages import get_package

    class Dropping(LocalIO):
        """Loses client r1 in the second exchange of round 2 (a runner gone mid-iteration)."""

        async def step(self, name, payloads, *, round, **kw):  # type: ignore[override]
            found = await super().step(name, payloads, round=round, **kw)
            if (round, name) == (2, "grow") and self.steps.count((2, "grow")) == 2:
                found.answers.pop("r1/train1")
                found.dropped.append("r1/train1")
                del self.datasets["r1/train1"]
            return found

    clients = federation(tmp_path, [frame(800, 32), frame(800, 33)])
    config = {"model": {"params": {"max_depth": 3, "max_iter": 3}}}
    io = Dropping("gbm", clients)
    asyncio.run(get_package("gbm").load_plan()(config, DATA, 3).run(io))

    assert io.done and io.model().n_iter_ == 3
    assert io.steps.count((2, "grow")) == 2 + 3  # root, the lost level, then the trees again
    assert any("dropped while the trees grew" in line for line in io.logs)
    assert set(io.metrics[-1].per_client) == {"r0/train0"}
