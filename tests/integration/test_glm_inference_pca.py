"""glm, linear_inference and pca end to end: SDK → coordinator → two real runners → model, and
the federated results equal statsmodels / scikit-learn on the pooled rows."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from jupyter_fed import SessionTaskGroup
from jupyter_fed.errors import SessionFailed

sm = pytest.importorskip("statsmodels.api")

X = [f"x{i}" for i in range(15)]


@pytest.fixture(scope="module")
def silos(data_root) -> dict[str, pd.DataFrame]:
    return {f"train_silo{i}": pq.read_table(data_root / f"train_silo{i}.parquet").to_pandas()
            for i in range(2)}


@pytest.fixture(scope="module")
def counts(federation, data_root, silos):
    """A count target beside the demo features, registered as ``counts_silo{i}`` on each runner."""
    names = {}
    for i, (runner, proc) in enumerate(sorted(federation.processes.items())):
        frame = silos[f"train_silo{i}"][["x0", "x1", "x2"]].copy()
        rng = np.random.default_rng(40 + i)
        frame["k"] = rng.poisson(np.exp(0.2 + 0.3 * frame.x0 - 0.2 * frame.x1)).astype(float)
        name = f"counts_silo{i}_{uuid.uuid4().hex[:6]}"
        frame.to_parquet(data_root / f"{name}.parquet", index=False)
        with proc.http() as admin:
            assert admin.post("/v1/datasets", json={"name": name, "path": str(
                data_root / f"{name}.parquet")}).status_code == 201
        names[runner] = (name, frame)
    yield names
    for runner, (name, _) in names.items():
        with federation.processes[runner].http() as admin:
            admin.delete(f"/v1/datasets/{name}")


def run(client, package, model_config, data_config, tasks, num_rounds=30):
    session = client.create_fl_session(name=package, min_num_clients=len(tasks),
                                       num_rounds=num_rounds, package_name=package,
                                       model_config=model_config, data_config=data_config).start()
    group = SessionTaskGroup(session)
    for task in tasks:
        group.add_task(task)
    assert group.start().wait(180)
    return session


def test_glm_newton_is_the_pooled_maximum_likelihood(client, silos, counts) -> None:
    tb = client.task_builder()
    tasks = [tb.hfl(name, runner=runner) for runner, (name, _) in sorted(counts.items())]
    pooled = pd.concat([f for _, f in counts.values()], ignore_index=True)
    ref = sm.GLM(pooled.k, sm.add_constant(pooled[["x0", "x1", "x2"]]),
                 family=sm.families.Poisson()).fit()

    session = run(client, "iai_glm", {"ml_task": {"type": "poisson"}},
                  {"predictors": ["x0", "x1", "x2"], "target": "k"}, tasks)
    model = session.model()

    np.testing.assert_allclose([model.intercept_, *model.coef_], ref.params, rtol=1e-6)
    np.testing.assert_allclose(model.std_err_, ref.bse, rtol=1e-6)
    metrics = session.metrics().as_dict()
    assert len(metrics["federated_metrics"]) == model.meta["iterations"] + 1
    assert set(metrics["client_metrics"][-1]) == {f"{r}/{n}" for r, (n, _) in counts.items()}
    assert {"loss", "r2"} <= set(metrics["federated_metrics"][-1])
    est = model.as_sklearn()
    x = pooled[["x0", "x1", "x2"]].to_numpy()[:20]
    np.testing.assert_allclose(est.predict(x), ref.predict(sm.add_constant(x)), rtol=1e-6)


def test_glm_logistic_with_test_sets_and_the_sgd_solver(client, silos) -> None:
    tb = client.task_builder()
    tasks = [tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}") for i in range(2)]
    pooled = pd.concat(silos.values(), ignore_index=True)
    ref = sm.Logit(pooled.y, sm.add_constant(pooled[X])).fit(disp=0)

    newton = run(client, "glm", {"ml_task": {"type": "logistic"}},
                 {"predictors": X, "target": "y"}, tasks).model()
    sgd_session = run(client, "glm", {"solver": "sgd", "ml_task": {"type": "logistic"},
                                      "optimizer": {"name": "SGD", "params": {"learning_rate": 0.05}}},
                      {"predictors": X, "target": "y"}, tasks, num_rounds=3)

    np.testing.assert_allclose([newton.intercept_, *newton.coef_], ref.params, rtol=1e-6, atol=1e-9)
    fed = sgd_session.metrics().as_dict()["federated_metrics"]
    assert len(fed) == 4 and fed[-1]["roc_auc"] > 0.75 and fed[-1]["loss"] < fed[0]["loss"]
    assert sgd_session.model().solver == "sgd"


@pytest.mark.parametrize("strategy", ["LogitRegInference", "LinearRegInference"])
def test_linear_inference_equals_statsmodels(client, silos, strategy) -> None:
    tb = client.task_builder()
    tasks = [tb.hfl(f"train_silo{i}", runner=f"silo{i}") for i in range(2)]
    pooled = pd.concat(silos.values(), ignore_index=True)
    target = "y" if strategy == "LogitRegInference" else "x5"
    chunked = ["x0", "x3", 10, "x11", "x12"]  # names or indices, as the reference allows

    session = run(client, "iai_linear_inference", {"strategy": {"name": strategy}},
                  {"target": target, "shared_predictors": ["x1", "x2"],
                   "chunked_predictors": chunked}, tasks)
    model = session.model()

    assert model.chunked == ["x0", "x3", "x10", "x11", "x12"]
    for c in model.chunked:
        design = sm.add_constant(pooled[["x1", "x2", c]])
        ref = (sm.Logit(pooled[target], design).fit(disp=0) if strategy == "LogitRegInference"
               else sm.OLS(pooled[target], design).fit())
        table = model.summary(c)
        np.testing.assert_allclose(table.coef, ref.params, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(table.std_err, ref.bse, rtol=1e-6)
        np.testing.assert_allclose(table.p_value, ref.pvalues, rtol=1e-6, atol=1e-300)
    assert model.p_values().index.tolist() == model.chunked
    import torch

    pred = model.as_pytorch()(torch.as_tensor(pooled[["x1", "x2", *model.chunked]].to_numpy()[:7]
                                              .copy()))
    assert tuple(pred.shape) == (7, 5)


def test_pca_equals_scikit_learn_and_reports_reconstruction(client, silos) -> None:
    from sklearn.decomposition import PCA

    tb = client.task_builder()
    tasks = [tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}") for i in range(2)]
    pooled = pd.concat(silos.values(), ignore_index=True)[X[:10]]
    ref = PCA(n_components=4).fit(pooled.to_numpy())

    session = run(client, "iai_pca", {"strategy": {"name": "FedPCA"},
                                      "model": {"params": {"n_features": 10, "n_components": 4}}},
                  {"predictors": X[:10]}, tasks, num_rounds=5)
    model = session.model()

    sign = np.sign(np.sum(model.components_ * ref.components_, axis=1))[:, None]
    np.testing.assert_allclose(model.components_ * sign, ref.components_, atol=1e-8)
    np.testing.assert_allclose(model.explained_variance_, ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(model.explained_variance_ratio_, ref.explained_variance_ratio_,
                               rtol=1e-8)
    np.testing.assert_allclose(model.as_sklearn().transform(pooled.to_numpy()[:5]),
                               ref.transform(pooled.to_numpy()[:5]), atol=1e-8)
    assert set(model.as_pytorch().state_dict()) >= {"components", "explained_variance", "mean"}
    (entry,) = session.metrics().as_dict()["client_metrics"]
    assert set(entry) == {"silo0/train_silo0", "silo1/train_silo1"}
    assert 0 < entry["silo0/train_silo0"]["test_r2"] < 1


def test_exact_steps_are_refused_where_the_policy_requires_dp(client, federation) -> None:
    proc = federation.processes["silo1"]
    with proc.http() as admin:
        policy = admin.get("/v1/datasets/train_silo1/policy").json()
        admin.put("/v1/datasets/train_silo1/policy", json={**policy, "require_dp": True})
    try:
        for package, model_config, data_config in [
                ("glm", {}, {"predictors": X, "target": "y"}),
                ("pca", {}, {"predictors": X[:3]}),
                ("linear_inference", {}, {"target": "y", "chunked_predictors": ["x0"]})]:
            session = client.create_fl_session(name=package, min_num_clients=1, num_rounds=3,
                                               package_name=package, model_config=model_config,
                                               data_config=data_config).start()
            with pytest.raises(SessionFailed, match="only allows differentially private steps"):
                SessionTaskGroup(session).add_task(
                    client.task_builder().hfl("train_silo1", runner="silo1")).start().wait(60)
            error = session.info()["error"]
            assert "spends no epsilon" in error and f"{package}." in error
            assert "exact" in error.split("spends no epsilon")[1]  # why, and what to do
    finally:
        with proc.http() as admin:
            admin.put("/v1/datasets/train_silo1/policy", json=policy)
