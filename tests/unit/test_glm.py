"""glm's Newton solver against statsmodels' GLM on the pooled rows (all five families), its
penalty against scikit-learn, and the SGD solver's FedAvg rounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plan_harness import dataset, run_plan

sm = pytest.importorskip("statsmodels.api")

PREDICTORS = ["a", "b", "c"]
BETA = np.array([0.3, 0.5, -0.4, 0.2])


def draw(family: str, n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, size=(n, 3)) * [1.0, 0.5, 2.0]
    eta = BETA[0] + x @ BETA[1:] * (0.3 if family != "normal" else 1.0)
    mu = np.exp(eta)
    y = {"normal": lambda: eta + rng.normal(0, 0.7, n),
         "logistic": lambda: (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
         "poisson": lambda: rng.poisson(mu).astype(float),
         "gamma": lambda: rng.gamma(3.0, mu / 3.0),
         "inverse_gaussian": lambda: rng.wald(mu, 4.0)}[family]()
    return pd.DataFrame({**dict(zip(PREDICTORS, x.T, strict=True)), "y": y})


def federation(tmp_path, family: str, test: bool = False):
    frames = [draw(family, 600, 1, -0.3), draw(family, 900, 2, 0.2), draw(family, 400, 3, 0.0)]
    clients = {}
    for i, f in enumerate(frames):
        roles = {"train": dataset(tmp_path, f"{family}{i}", f)}
        if test:
            roles["test"] = dataset(tmp_path, f"{family}_test{i}", draw(family, 300, 20 + i, 0.0))
        clients[f"r{i}/{family}{i}"] = roles
    return clients, pd.concat(frames, ignore_index=True)


SM_FAMILY = {"normal": lambda: sm.families.Gaussian(),
             "logistic": lambda: sm.families.Binomial(),
             "poisson": lambda: sm.families.Poisson(),
             "gamma": lambda: sm.families.Gamma(sm.families.links.Log()),
             "inverse_gaussian": lambda: sm.families.InverseGaussian(sm.families.links.Log())}


@pytest.mark.parametrize("family", list(SM_FAMILY))
def test_newton_equals_statsmodels_glm_on_the_pooled_rows(tmp_path, family) -> None:
    clients, pooled = federation(tmp_path, family)
    ref = sm.GLM(pooled.y, sm.add_constant(pooled[PREDICTORS]), family=SM_FAMILY[family]()).fit()

    io = run_plan("iai_glm", {"ml_task": {"type": family}},
                  {"predictors": PREDICTORS, "target": "y"}, clients, num_rounds=50)
    model = io.model()

    assert model.solver == "newton" and model.converged
    coef = np.concatenate([[model.intercept_], model.coef_])
    np.testing.assert_allclose(coef, ref.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.std_err_, ref.bse, rtol=1e-6)
    np.testing.assert_allclose(model.summary().p_value, ref.pvalues, rtol=1e-5, atol=1e-300)
    assert model.meta["deviance"] == pytest.approx(ref.deviance, rel=1e-8)
    assert 2 <= model.meta["iterations"] < 20  # stopped by the deviance rule, not the maximum
    # one metrics entry per model, the null model first; the last one is the model handed back
    assert [m.model_round for m in io.metrics] == list(range(model.meta["iterations"] + 1))
    key = "roc_auc" if family == "logistic" else "r2"
    assert {"loss", key} <= set(io.metrics[-1].federated)
    assert io.metrics[-1].federated["loss"] <= io.metrics[0].federated["loss"]
    x = pooled[PREDICTORS].iloc[:40]
    np.testing.assert_allclose(model.predict(x), ref.predict(sm.add_constant(x, has_constant="add")),
                               rtol=1e-6)
    import torch

    with torch.no_grad():
        out = model.as_pytorch()(torch.as_tensor(np.array(x.to_numpy())))
    np.testing.assert_allclose(out.numpy()[:, 0], model.predict(x), rtol=1e-12)
    est = model.as_sklearn()
    predicted = est.predict_proba(x.to_numpy())[:, 1] if family == "logistic" else est.predict(x.to_numpy())
    np.testing.assert_allclose(predicted, model.predict(x), rtol=1e-9)


@pytest.mark.parametrize(("family", "estimator"), [("poisson", "PoissonRegressor"),
                                                   ("logistic", "LogisticRegression"),
                                                   ("normal", "Ridge")])
def test_the_l2_penalty_matches_scikit_learn(tmp_path, family, estimator) -> None:
    clients, pooled = federation(tmp_path, family)
    alpha, n = 0.01, len(pooled)
    from sklearn import linear_model as lm

    ref = {"PoissonRegressor": lambda: lm.PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=1000),
           "LogisticRegression": lambda: lm.LogisticRegression(C=1 / (alpha * n), tol=1e-12,
                                                               max_iter=1000),
           "Ridge": lambda: lm.Ridge(alpha=alpha * n)}[estimator]().fit(
        pooled[PREDICTORS].to_numpy(), pooled.y.to_numpy())

    io = run_plan("glm", {"ml_task": {"type": family, "params": {"alpha": alpha}}},
                  {"predictors": PREDICTORS, "target": "y"}, clients)
    model = io.model()

    np.testing.assert_allclose(model.coef_, np.ravel(ref.coef_), rtol=1e-5, atol=1e-8)
    assert model.intercept_ == pytest.approx(float(np.ravel(ref.intercept_)[0]), rel=1e-5)
    assert type(model.as_sklearn()).__name__ == estimator
    assert np.isnan(model.std_err_).all()


def test_sgd_solver_runs_fedavg_rounds_and_learns(tmp_path) -> None:
    clients, pooled = federation(tmp_path, "logistic", test=True)
    cfg = {"solver": "sgd", "ml_task": {"type": "logistic", "params": {"alpha": 0.001, "l1_ratio": 0.5}},
           "optimizer": {"name": "SGD", "params": {"learning_rate": 0.1}}, "batch_size": 32,
           "model": {"params": {"input_size": 3}}}

    io = run_plan("glm", cfg, {"predictors": PREDICTORS, "target": "y"}, clients, num_rounds=4)
    model = io.model()

    assert model.solver == "sgd"
    assert [m.model_round for m in io.metrics] == [0, 1, 2, 3, 4]  # the initial model first
    first, last = io.metrics[0].federated, io.metrics[-1].federated
    assert last["loss"] < first["loss"] and last["roc_auc"] > 0.52  # a weak signal
    assert set(io.metrics[-1].per_client["r0/logistic0"]) >= {"test_loss", "test_accuracy",
                                                              "test_roc_auc", "test_num_examples"}
    ref = sm.GLM(pooled.y, sm.add_constant(pooled[PREDICTORS]), family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(model.coef_, ref.params[1:], atol=0.15)  # near, not exact


def test_configs_are_checked_field_by_field() -> None:
    from jupyter_fed.errors import ConfigError
    from jupyter_fed.packages.glm.plan import GLMPlan

    data = {"predictors": PREDICTORS, "target": "y"}
    dp = {"epsilon": 1.0, "max_grad_norm": 1.0}
    assert GLMPlan({"differential_privacy_params": dp}, data).cfg.resolved_solver == "sgd"
    assert GLMPlan({"ml_task": {"params": {"alpha": 1, "l1_ratio": 0.5}}}, data).cfg.resolved_solver == "sgd"
    with pytest.raises(ConfigError, match=r"solver 'newton' releases exact"):
        GLMPlan({"solver": "newton", "differential_privacy_params": dp}, data)
    with pytest.raises(ConfigError, match=r"model_config\.ml_task\.type"):
        GLMPlan({"ml_task": {"type": "tweedie"}}, data)
    with pytest.raises(ConfigError, match=r"link 'logit' is not available for poisson"):
        GLMPlan({"ml_task": {"type": "poisson", "params": {"link": "logit"}}}, data)
    with pytest.raises(ConfigError, match=r"input_size"):
        GLMPlan({"model": {"params": {"input_size": 4}}}, data)


def test_a_target_outside_the_family_is_refused_without_its_values(tmp_path) -> None:
    from jupyter_fed.errors import ConfigError

    clients, _ = federation(tmp_path, "normal")
    with pytest.raises(ConfigError, match=r"must be positive for the gamma family") as err:
        run_plan("glm", {"ml_task": {"type": "gamma"}}, {"predictors": PREDICTORS, "target": "y"},
                 clients)
    assert not any(ch.isdigit() for ch in err.value.message.split("dataset")[0])


def test_dp_sgd_spends_what_the_runner_debits(tmp_path) -> None:
    from jupyter_fed.packages import get_package

    clients, _ = federation(tmp_path, "logistic", test=True)
    cfg = {"ml_task": {"type": "logistic"}, "differential_privacy_params": {
        "epsilon": 4.0, "max_grad_norm": 1.0}, "optimizer": {"name": "SGD", "params": {
            "learning_rate": 0.2}}, "batch_size": 64}
    data = {"predictors": PREDICTORS, "target": "y"}
    spec = get_package("glm")

    io = run_plan("glm", cfg, data, clients, num_rounds=2)

    from jupyter_fed.privacy.accounting import DatasetFacts, delta_cap

    params = {"model_config": cfg, "data_config": data, "num_rounds": 2}
    facts = {"train": DatasetFacts(1000, delta_cap(1000), False),
             "test": DatasetFacts(500, delta_cap(500), False)}
    fit = spec.privacy_cost_of("fit", params, facts)
    assert fit["train"].epsilon == 2.0 and 0 < fit["train"].delta <= delta_cap(1000)
    assert fit["train"].trains and fit["test"].evaluation  # measured on the test rows
    newton = {"model_config": {**cfg, "differential_privacy_params": None}, "data_config": data,
              "num_rounds": 2}
    exact = spec.privacy_cost_of("newton", newton, facts)
    assert not exact["train"].spends and exact["train"].trains and exact["test"].evaluation
    assert not spec.privacy_cost_of("moments", newton, facts)["train"].spends
    sgd = spec.privacy_cost_of("fit", newton, facts)["train"]  # its training loss is measured
    assert sgd.trains and sgd.evaluation and sgd.party_model and not sgd.spends
    assert io.model().solver == "sgd" and ("moments" not in [s for _, s in io.steps])
    assert all(set(m.per_client) == set(clients) for m in io.metrics)  # measured on test rows only


def test_a_resumed_newton_session_ends_where_an_uninterrupted_one_does(tmp_path) -> None:
    clients, _ = federation(tmp_path, "gamma")
    cfg, data = {"ml_task": {"type": "gamma"}}, {"predictors": PREDICTORS, "target": "y"}
    whole = run_plan("glm", cfg, data, clients)

    resumed = run_plan("glm", cfg, data, clients, checkpoint=whole.states[2])

    assert resumed.steps[0] == (3, "newton")  # neither the null model nor rounds 1-2 again
    np.testing.assert_allclose(resumed.model().coef_, whole.model().coef_, rtol=1e-12)
