"""linear_inference's plan and runner steps against statsmodels on the pooled rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plan_harness import dataset, run_plan

sm = pytest.importorskip("statsmodels.api")

CHUNKED = [f"c{i}" for i in range(12)]


def silo(n: int, seed: int, shift: float, logistic: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"s0": rng.normal(shift, 1.0, n), "s1": rng.binomial(1, 0.4, n).astype(float)})
    for i, c in enumerate(CHUNKED):  # genotype-like 0/1/2 counts, a few of them associated
        df[c] = rng.binomial(2, 0.1 + 0.03 * i, n).astype(float)
    eta = -0.3 + 0.6 * df.s0 - 0.5 * df.s1 + 0.4 * df.c1 - 0.3 * df.c5
    if logistic:
        df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        df["y"] = 2.0 + eta + rng.normal(0, 1.5, n)
    return df


def federation(tmp_path: Path, logistic: bool, test: bool = False) -> tuple[dict, pd.DataFrame]:
    frames = [silo(700, 1, -0.2, logistic), silo(900, 2, 0.3, logistic), silo(500, 3, 0.0, logistic)]
    clients = {}
    for i, f in enumerate(frames):
        roles = {"train": dataset(tmp_path, f"train{i}", f)}
        if test:
            roles["test"] = dataset(tmp_path, f"test{i}", silo(300, 10 + i, 0.0, logistic))
        clients[f"r{i}/train{i}"] = roles
    return clients, pd.concat(frames, ignore_index=True)


def reference(pooled: pd.DataFrame, chunk: str, logistic: bool):
    x = sm.add_constant(pooled[["s0", "s1", chunk]])
    if logistic:
        return sm.Logit(pooled.y, x).fit(disp=0, tol=1e-12, maxiter=100)
    return sm.OLS(pooled.y, x).fit()


@pytest.mark.parametrize("strategy", ["LogitRegInference", "LinearRegInference"])
def test_every_model_equals_statsmodels_on_the_pooled_rows(tmp_path, strategy) -> None:
    logistic = strategy == "LogitRegInference"
    clients, pooled = federation(tmp_path, logistic)

    io = run_plan("iai_linear_inference", {"strategy": {"name": strategy}},
                  {"target": "y", "shared_predictors": ["s0", 1], "chunked_predictors": CHUNKED},
                  clients)
    model = io.model()

    assert model.shared == ["s0", "s1"] and model.chunked == CHUNKED and model.converged
    frame = model.as_dataframe()
    for c in CHUNKED:
        ref = reference(pooled, c, logistic)
        mine = model.summary(c)
        np.testing.assert_allclose(mine.coef, ref.params, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(mine.std_err, ref.bse, rtol=1e-6)
        np.testing.assert_allclose(mine.p_value, ref.pvalues, rtol=1e-6, atol=1e-300)
        np.testing.assert_allclose(mine[["ci_lower", "ci_upper"]], ref.conf_int(), rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(mine[model.statistic_name], ref.tvalues, rtol=1e-6)
        assert model.p_values()[c] == pytest.approx(ref.pvalues[c], rel=1e-6)
        np.testing.assert_allclose(frame.loc[c].coef, ref.params, rtol=1e-6, atol=1e-12)
    x = pooled[["s0", "s1", *CHUNKED]]
    pred = model.predict(x)
    assert pred.shape == (len(pooled), len(CHUNKED))
    np.testing.assert_allclose(pred[:, 3], reference(pooled, CHUNKED[3], logistic).predict(
        sm.add_constant(pooled[["s0", "s1", CHUNKED[3]]])), rtol=1e-6)
    import torch

    net = model.as_pytorch()
    np.testing.assert_allclose(net(torch.as_tensor(x.to_numpy())).numpy(), pred, rtol=1e-12)
    assert list(net.p_values().index) == CHUNKED


def test_logit_stops_on_the_convergence_rule_and_metrics_have_one_entry_per_model(tmp_path) -> None:
    clients, _ = federation(tmp_path, True, test=True)
    cfg = {"target": "y", "shared_predictors": ["s0", "s1"], "chunked_predictors": CHUNKED}

    io = run_plan("linear_inference", {"strategy": {"name": "LogitRegInference"}}, cfg, clients,
                  num_rounds=50)
    short = run_plan("linear_inference", {"strategy": {"name": "LogitRegInference"}}, cfg, clients,
                     num_rounds=2)

    iterations = io.artefact.meta["iterations"]
    assert 3 <= iterations < 15  # stopped by |Δβ| < tol, far below the maximum
    assert [r for r, s in io.steps] == list(range(1, iterations + 2))  # + the final pass
    assert [m.model_round for m in io.metrics] == list(range(iterations + 1))
    losses = [m.federated["loss"] for m in io.metrics]
    assert losses[0] == pytest.approx(np.log(2)) and losses[-1] < losses[0]
    assert {"loss", "accuracy", "roc_auc"} <= set(io.metrics[-1].federated)
    assert all(set(per) == set(clients) for per in (m.per_client for m in io.metrics))
    assert "not_converged" in short.warnings and not short.model().converged


def test_a_constant_chunked_predictor_is_reported_not_fatal(tmp_path) -> None:
    clients, _ = federation(tmp_path, False)
    for roles in clients.values():
        frame = roles["train"].to_pandas()
        frame["flat"] = 1.0
        roles["train"] = dataset(tmp_path, roles["train"].info.name + "f", frame)

    io = run_plan("linear_inference", {"strategy": {"name": "LinearRegInference"}},
                  {"target": "y", "shared_predictors": ["s0"], "chunked_predictors": ["c1", "flat"]},
                  clients)

    model = io.model()
    assert np.isfinite(model.coef[0]).all() and np.isnan(model.coef[1]).all()
    assert "flat" in io.warnings["singular"]


def test_bad_configs_name_the_field() -> None:
    from jupyter_fed.errors import ConfigError
    from jupyter_fed.packages.linear_inference.plan import InferencePlan

    with pytest.raises(ConfigError, match=r"model_config\.strategy\.name"):
        InferencePlan({"strategy": {"name": "Probit"}}, {"target": "y", "chunked_predictors": ["x"]})
    with pytest.raises(ConfigError, match=r"data_config\.chunked_predictors"):
        InferencePlan({}, {"target": "y", "chunked_predictors": []})
    with pytest.raises(ConfigError, match="appear more than once"):
        InferencePlan({}, {"target": "y", "shared_predictors": ["x"], "chunked_predictors": ["x"]})


def test_a_resumed_logit_bundle_ends_where_an_uninterrupted_one_does(tmp_path) -> None:
    clients, _ = federation(tmp_path, True)
    cfg = {"target": "y", "shared_predictors": ["s0"], "chunked_predictors": CHUNKED}
    whole = run_plan("linear_inference", {}, cfg, clients)

    resumed = run_plan("linear_inference", {}, cfg, clients, checkpoint=whole.states[2])

    assert resumed.steps[0][0] == 3
    np.testing.assert_allclose(resumed.model().coef, whole.model().coef, rtol=1e-10)
    np.testing.assert_allclose(resumed.model().std_err, whole.model().std_err, rtol=1e-10)
