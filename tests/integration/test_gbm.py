"""gbm end to end: SDK → coordinator → two real runner processes → model, against scikit-learn
on the pooled rows; the privacy policy's refusal; the secure-sum path once the engine has it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from jupyter_fed import SessionTaskGroup
from jupyter_fed.errors import SessionFailed

X = [f"x{i}" for i in range(15)]
PARAMS = {"max_depth": 3, "learning_rate": 0.1, "max_iter": 15}


def run(client, model_config, tasks, num_rounds=15, data_config=None):
    session = client.create_fl_session(name="gbm", min_num_clients=len(tasks),
                                       num_rounds=num_rounds, package_name="iai_gbm",
                                       model_config=model_config,
                                       data_config=data_config or {"predictors": X, "target": "y"}
                                       ).start()
    group = SessionTaskGroup(session)
    for task in tasks:
        group.add_task(task)
    assert group.start().wait(180, 0.1)
    return session


def test_a_gbm_session_matches_scikit_learn_on_the_pooled_rows(client, data_root) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    tb = client.task_builder()
    tasks = [tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}") for i in range(2)]
    pooled = pd.concat([pq.read_table(data_root / f"train_silo{i}.parquet").to_pandas()
                        for i in range(2)], ignore_index=True)
    test = pq.read_table(data_root / "test.parquet").to_pandas()
    ref = HistGradientBoostingClassifier(max_leaf_nodes=None, early_stopping=False,
                                         **PARAMS).fit(pooled[X], pooled.y)

    session = run(client, {"strategy": {"name": "HistGradientBoosting"},
                           "model": {"params": PARAMS}}, tasks)
    model = session.model()
    est = model.as_sklearn()

    mine = roc_auc_score(test.y, est.predict_proba(test[X])[:, 1])
    assert abs(mine - roc_auc_score(test.y, ref.predict_proba(test[X])[:, 1])) < 0.01
    m = session.metrics().as_dict()
    assert len(m["federated_metrics"]) == len(m["client_metrics"]) == 16  # initial + 15 trees
    assert set(m["federated_metrics"][-1]) == {"loss", "accuracy", "roc_auc"}
    assert m["federated_metrics"][-1]["roc_auc"] == pytest.approx(mine, abs=1e-9)
    for per_round in m["client_metrics"]:
        assert set(per_round) == {"silo0/train_silo0", "silo1/train_silo1"}
    assert m["latest_global_model_federated_loss"] < m["federated_metrics"][0]["loss"]
    rounds = {r["round"]: r["info"] for r in session.rounds()}
    assert rounds[1]["exchanges"] == 3 and rounds[1]["bytes_from_runners"] > 0
    assert rounds[16]["best_model_round"] == 15
    with pytest.raises(NotImplementedError, match="no PyTorch form"):
        model.as_pytorch()


@pytest.fixture(scope="module")
def regression(federation, data_root):
    """A numeric target beside the demo features, registered on each runner (train and test)."""
    import uuid

    def target(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        out = frame[X[:6]].copy()
        out["t"] = (2 * out.x0 - np.abs(out.x1) + out.x2 * out.x3 + np.where(out.x4 > 0, 1.5, 0)
                    + rng.normal(0, 0.5, len(out)))
        return out

    tag = uuid.uuid4().hex[:6]
    test = target(pq.read_table(data_root / "test.parquet").to_pandas(), 9)
    names = {}
    for i, (runner, proc) in enumerate(sorted(federation.processes.items())):
        frame = target(pq.read_table(data_root / f"train_silo{i}.parquet").to_pandas(), i)
        for name, rows in ((f"reg{i}_{tag}", frame), (f"reg_test{i}_{tag}", test)):
            rows.to_parquet(data_root / f"{name}.parquet", index=False)
            with proc.http() as admin:
                assert admin.post("/v1/datasets", json={"name": name, "path": str(
                    data_root / f"{name}.parquet")}).status_code == 201
        names[runner] = (f"reg{i}_{tag}", f"reg_test{i}_{tag}", frame)
    yield names, test
    for runner, (train, test_name, _) in names.items():
        with federation.processes[runner].http() as admin:
            admin.delete(f"/v1/datasets/{train}")
            admin.delete(f"/v1/datasets/{test_name}")


def test_gbm_regression_across_runners(client, regression) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    names, test = regression
    tb = client.task_builder()
    tasks = [tb.hfl(train, test_name, runner=runner)
             for runner, (train, test_name, _) in sorted(names.items())]
    pooled = pd.concat([f for *_, f in names.values()], ignore_index=True)
    cols = X[:6]
    ref = HistGradientBoostingRegressor(max_leaf_nodes=None, early_stopping=False,
                                        **PARAMS).fit(pooled[cols], pooled.t)

    session = run(client, {"ml_task": {"type": "regression"}, "model": {"params": PARAMS}},
                  tasks, data_config={"predictors": cols, "target": "t"})

    est = session.model().as_sklearn()
    mine = est.score(test[cols], test.t)
    assert abs(mine - ref.score(test[cols], test.t)) < 0.01 and mine > 0.5
    assert session.metrics().as_dict()["federated_metrics"][-1]["r2"] == pytest.approx(mine)


def test_gbm_is_refused_where_the_policy_requires_dp(client, federation) -> None:
    proc = federation.processes["silo1"]
    with proc.http() as admin:
        policy = admin.get("/v1/datasets/train_silo1/policy").json()
        admin.put("/v1/datasets/train_silo1/policy", json={**policy, "require_dp": True})
    try:
        session = client.create_fl_session(name="gbm", min_num_clients=1, num_rounds=3,
                                           package_name="gbm", model_config={},
                                           data_config={"predictors": X, "target": "y"}).start()
        with pytest.raises(SessionFailed, match="only allows differentially private steps"):
            SessionTaskGroup(session).add_task(
                client.task_builder().hfl("train_silo1", runner="silo1")).start().wait(60)
        error = session.info()["error"]
        assert "gbm.sketch spends no epsilon" in error and "exact sketches" in error
    finally:
        with proc.http() as admin:
            admin.put("/v1/datasets/train_silo1/policy", json=policy)


def test_secure_aggregation_gives_the_plain_model(client) -> None:
    """Histograms summed under secure aggregation give the model the plain sums give, within the
    quantisation of the secure sum."""
    tb = client.task_builder()
    tasks = [tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}") for i in range(2)]
    config = {"model": {"params": {**PARAMS, "max_iter": 4}}}
    session = client.create_fl_session(name="gbm", min_num_clients=2, num_rounds=4,
                                       package_name="gbm",
                                       model_config={**config, "secure_aggregation": True},
                                       data_config={"predictors": X, "target": "y"}).start()
    group = SessionTaskGroup(session)
    for task in tasks:
        group.add_task(task)
    group.start().wait(180, 0.1)
    plain = run(client, config, tasks, num_rounds=4).model()
    secure = session.model()
    for key, value in plain.arrays.items():  # equal within the quantisation of the secure sum
        np.testing.assert_allclose(secure.arrays[key], value, rtol=1e-6, atol=1e-6, err_msg=key)
