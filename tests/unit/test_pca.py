"""pca's plan and runner steps against scikit-learn's PCA on the pooled rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plan_harness import dataset, run_plan
from sklearn.decomposition import PCA

FEATURES = [f"f{i}" for i in range(8)]


def silo(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(0).normal(size=(8, 8)) * np.linspace(3, 0.3, 8)[:, None]
    x = rng.normal(size=(n, 8)) @ mixing + shift + 10.0  # distinct variances, far from the origin
    return pd.DataFrame(x, columns=FEATURES)


@pytest.fixture()
def federation(tmp_path):
    frames = [silo(400, 1, -0.5), silo(700, 2, 0.8), silo(300, 3, 0.0)]
    clients = {f"r{i}/t{i}": {"train": dataset(tmp_path, f"t{i}", f),
                              "test": dataset(tmp_path, f"test{i}", silo(200, 9 + i, 0.0))}
               for i, f in enumerate(frames)}
    return clients, pd.concat(frames, ignore_index=True)


def aligned(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a``'s rows with the signs of ``b``'s (axes are defined up to sign)."""
    return a * np.sign(np.sum(a * b, axis=1))[:, None]


@pytest.mark.parametrize("whiten", [False, True])
def test_axes_and_variances_equal_scikit_learn_on_the_pooled_rows(federation, whiten) -> None:
    clients, pooled = federation
    ref = PCA(n_components=3, whiten=whiten, svd_solver="full").fit(pooled.to_numpy())

    io = run_plan("iai_pca", {"strategy": {"name": "FedPCA"},
                              "model": {"params": {"n_components": 3, "whiten": whiten}}},
                  {"predictors": []}, clients, num_rounds=7)
    model = io.model()

    np.testing.assert_allclose(aligned(model.components_, ref.components_), ref.components_,
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.components_, ref.components_, atol=1e-8)  # same sign rule
    np.testing.assert_allclose(model.explained_variance_, ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(model.explained_variance_ratio_, ref.explained_variance_ratio_,
                               rtol=1e-8)
    np.testing.assert_allclose(model.singular_values_, ref.singular_values_, rtol=1e-8)
    assert model.noise_variance_ == pytest.approx(ref.noise_variance_, rel=1e-8)
    x = pooled.to_numpy()[:50]
    np.testing.assert_allclose(model.transform(pooled.iloc[:50]), ref.transform(x), atol=1e-8)
    est = model.as_sklearn()
    np.testing.assert_allclose(est.transform(x), ref.transform(x), atol=1e-8)
    np.testing.assert_allclose(est.inverse_transform(est.transform(x)),
                               ref.inverse_transform(ref.transform(x)), atol=1e-8)
    assert est.score(x) == pytest.approx(ref.score(x), rel=1e-8)
    import torch

    net = model.as_pytorch()
    assert {"components", "explained_variance", "mean"} <= set(net.state_dict())
    z = net(torch.as_tensor(np.array(x)))
    np.testing.assert_allclose(z.numpy(), ref.transform(x), atol=1e-8)
    np.testing.assert_allclose(net.inverse_transform(z).numpy(), ref.inverse_transform(ref.transform(x)),
                               atol=1e-8)
    assert [r for r, _ in io.steps] == [1, 2]  # one round of moments, one of metrics


def test_reconstruction_metrics_per_client_and_a_variance_fraction(federation) -> None:
    clients, pooled = federation

    io = run_plan("pca", {"model": {"params": {"n_components": 0.9}}},
                  {"predictors": FEATURES[:6]}, clients)

    ref = PCA(n_components=0.9).fit(pooled[FEATURES[:6]].to_numpy())
    model = io.model()
    assert model.n_components_ == ref.n_components_ and model.feature_names == FEATURES[:6]
    (entry,) = io.metrics
    test = clients["r1/t1"]["test"].to_pandas()[FEATURES[:6]].to_numpy()
    back = model.inverse_transform(model.transform(test))
    mine = entry.per_client["r1/t1"]
    assert mine["test_loss"] == pytest.approx(np.mean((test - back) ** 2), rel=1e-9)
    from sklearn.metrics import r2_score

    assert mine["test_r2"] == pytest.approx(r2_score(test, back), rel=1e-9)
    assert set(entry.federated) >= {"loss", "r2"} and 0 < entry.federated["r2"] < 1


def test_bad_configs_name_the_field() -> None:
    from jupyter_fed.errors import ConfigError
    from jupyter_fed.packages.pca.plan import PCAPlan

    with pytest.raises(ConfigError, match=r"n_features"):
        PCAPlan({"model": {"params": {"n_features": 3, "n_components": 2}}}, {"predictors": ["a", "b"]})
    with pytest.raises(ConfigError, match=r"model_config\.model\.params\.n_components"):
        PCAPlan({"model": {"params": {"n_components": 1.5}}}, {})
    with pytest.raises(ConfigError, match=r"model_config\.strategy\.name"):
        PCAPlan({"strategy": {"name": "FedAvg"}}, {})
    with pytest.raises(ConfigError, match=r"more components than features|more than"):
        PCAPlan({"model": {"params": {"n_components": 3}}}, {"predictors": ["a", "b"]})


def test_a_resumed_session_only_measures(federation) -> None:
    clients, _ = federation
    whole = run_plan("pca", {"model": {"params": {"n_components": 2}}}, {}, clients)

    resumed = run_plan("pca", {"model": {"params": {"n_components": 2}}}, {}, clients,
                       checkpoint=whole.states[1])

    assert resumed.steps == [(2, "evaluate")]
    np.testing.assert_allclose(resumed.model().components_, whole.model().components_)
