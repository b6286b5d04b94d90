"""ffnet configuration messages, initial weights, and the numpy metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DATA_CONFIG, model_config

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages import get_package
from jupyter_fed.packages._metrics import r2, roc_auc
from jupyter_fed.packages.ffnet import _net
from jupyter_fed.packages.ffnet.config import parse


def _errors(mc, dc=DATA_CONFIG) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse(mc, dc)
    return {d["field"]: d["error"] for d in info.value.details}


def test_each_bad_field_is_named_with_its_reason() -> None:
    cfg = model_config(ml_task={"type": "clustering"}, optimizr={})
    cfg["model"]["params"]["hidden_layer_sizes"] = [4, -1]
    errors = _errors(cfg)
    assert set(errors) == {"model_config.ml_task.type", "model_config.optimizr",
                           "model_config.model.params.hidden_layer_sizes"}
    assert errors["model_config.optimizr"] == "unknown field"
    assert "positive" in errors["model_config.model.params.hidden_layer_sizes"]


def test_input_size_must_match_the_predictors() -> None:
    errors = _errors(model_config(), {"predictors": ["x0", "x1"], "target": "y"})
    assert "model_config.model.params.input_size" in errors


def test_classification_needs_one_output_per_class() -> None:
    cfg = model_config()
    cfg["model"]["params"]["output_size"] = 1
    assert "output_size" in next(iter(_errors(cfg).values()))


def test_data_config_target_cannot_be_a_predictor() -> None:
    errors = _errors(model_config(), {"predictors": ["y"] * 15, "target": "y"})
    assert "also listed in predictors" in next(iter(errors.values()))


def test_reference_aliases_resolve_to_ffnet() -> None:
    assert get_package("iai_ffnet").name == get_package("FFNET").name == "ffnet"
    with pytest.raises(ConfigError, match="unknown package"):
        get_package("iai_nope")


def test_numpy_initial_weights_fit_the_torch_network_and_follow_the_seed() -> None:
    cfg, _ = parse(model_config(), DATA_CONFIG)
    w = _net.initial_weights(cfg)
    net = _net.load_numpy(_net.build(cfg), w)  # strict load: names and shapes must match
    assert set(w) == set(net.state_dict())
    assert (w["standardize.mean"] == 0).all() and (w["standardize.scale"] == 1).all()
    for k, v in w.items():
        if k.startswith("standardize."):
            continue
        assert np.abs(v).max() <= 1 / np.sqrt(net.state_dict()[k.replace("bias", "weight")].shape[1])
    again = _net.initial_weights(cfg)
    other = _net.initial_weights(parse(model_config(seed=4), DATA_CONFIG)[0])
    assert all((again[k] == w[k]).all() for k in w)
    assert not all((other[k] == w[k]).all() for k in w)


def test_federated_moments_merge_to_the_pooled_standardisation() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (7, 50, 1)]
    pooled = np.concatenate(parts)

    n, mean, m2 = _net.merge_moments([(len(p), p.mean(0), ((p - p.mean(0)) ** 2).sum(0))
                                      for p in parts])
    buffers = _net.standardization(n, mean, m2)

    assert n == len(pooled)
    np.testing.assert_allclose(mean, pooled.mean(0), rtol=1e-12)
    np.testing.assert_allclose(buffers["standardize.scale"], pooled.std(0), rtol=1e-6)


def test_standardisation_is_off_by_default_under_dp_and_absent_when_off() -> None:
    dp = {"epsilon": 1.0, "max_grad_norm": 1.0}
    assert parse(model_config(), DATA_CONFIG)[0].standardize is True
    assert parse(model_config(differential_privacy_params=dp), DATA_CONFIG)[0].standardize is False
    cfg = parse(model_config(normalize=False), DATA_CONFIG)[0]
    assert not any(k.startswith("standardize") for k in _net.initial_weights(cfg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_r2_match_scikit_learn(seed: int) -> None:
    from sklearn.metrics import r2_score, roc_auc_score

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + labels * 0.3, 1)  # rounding creates ties
    prob = np.c_[1 - scores / 2, scores / 2]
    assert roc_auc(labels, prob) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)

    multi = rng.integers(0, 3, 300)
    p3 = rng.dirichlet(np.ones(3), 300)
    assert roc_auc(multi, p3) == pytest.approx(
        roc_auc_score(multi, p3, multi_class="ovr", average="macro"), abs=1e-12)

    y, pred = rng.normal(size=100), rng.normal(size=100)
    assert r2(y, pred) == pytest.approx(r2_score(y, pred), abs=1e-12)


def test_auc_of_one_class_is_nan_not_a_number_made_up() -> None:
    assert np.isnan(roc_auc(np.ones(10, dtype=int), np.full((10, 2), 0.5)))
