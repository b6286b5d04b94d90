"""ffnet and glm with ``secure_aggregation: true`` reach the model they reach without it.

The runners mask every update (and the moments used for standardisation, and Newton's sums);
the coordinator adds them up and sees only the totals. Training is seeded, so the secure and the
plain session differ only by the quantisation of the sums (1e-10 on weights × examples).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from secagg_support import NAMES

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.errors import ConfigError

PREDICTORS = [f"x{i}" for i in range(15)]
FFNET = {"model": {"params": {"input_size": 15, "hidden_layer_sizes": [8], "output_size": 2}},
         "optimizer": {"name": "SGD", "params": {"learning_rate": 0.1}}, "seed": 3}


def train(fed: LocalFederation, state: Path, package: str, model_config: dict[str, Any],
          rounds: int, k: int = 3) -> Any:
    client = jupyter_fed.connect(embedded=True, state_dir=state, runners=fed.runners)
    try:
        session = client.create_fl_session(
            name=package, package_name=package, num_rounds=rounds, min_num_clients=2,
            model_config=model_config, data_config={"predictors": PREDICTORS, "target": "y"}
        ).start()
        tb = client.task_builder()
        group = SessionTaskGroup(session)
        for name in NAMES[:k]:
            group.add_task(tb.hfl("train", "test", runner=name))
        group.start().wait(300)
        rounds_info = session.rounds()
        return session.model(), rounds_info, [r["message"] for r in session.logs()]
    finally:
        client.close()


@pytest.mark.parametrize("strategy", [{"name": "FedAvg"},
                                      {"name": "FedAdam", "params": {"eta": 0.05}}])
def test_ffnet_secure_reaches_the_plain_model(all_up: LocalFederation, tmp_path: Path,
                                              strategy: dict[str, Any]) -> None:
    config = {**FFNET, "strategy": strategy}
    plain, _, _ = train(all_up, tmp_path / "plain", "ffnet", config, 3)
    secure, rounds, logs = train(all_up, tmp_path / "secure", "ffnet",
                                 {**config, "secure_aggregation": True}, 3)
    assert sorted(plain.weights) == sorted(secure.weights)
    for key, value in plain.weights.items():
        np.testing.assert_allclose(secure.weights[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    assert sum("secure sum of fit over 3 client(s)" in m for m in logs) == 3
    assert sum("secure sum of moments over 3 client(s)" in m for m in logs) == 1
    assert all(r["info"].get("secure_aggregation") for r in rounds if "train" in r["info"])


def test_glm_newton_secure_reaches_the_plain_fit(all_up: LocalFederation, tmp_path: Path) -> None:
    config = {"ml_task": {"type": "logistic"}}
    plain, _, _ = train(all_up, tmp_path / "plain", "glm", config, 20)
    secure, _, logs = train(all_up, tmp_path / "secure", "glm",
                            {**config, "secure_aggregation": True}, 20)
    np.testing.assert_allclose(secure.arrays["coef"], plain.arrays["coef"], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(secure.arrays["std_err"], plain.arrays["std_err"], rtol=1e-7)
    assert secure.converged and secure.meta["iterations"] == plain.meta["iterations"]
    assert any("secure sum of newton over 3 client(s)" in m for m in logs)


def test_glm_sgd_secure_reaches_the_plain_model(all_up: LocalFederation, tmp_path: Path) -> None:
    config = {"ml_task": {"type": "logistic"}, "solver": "sgd", "seed": 2,
              "optimizer": {"name": "SGD", "params": {"learning_rate": 0.1}}}
    plain, _, _ = train(all_up, tmp_path / "plain", "glm", config, 2)
    secure, _, _ = train(all_up, tmp_path / "secure", "glm", {**config, "secure_aggregation": True},
                         2)
    for key, value in plain.arrays.items():
        np.testing.assert_allclose(secure.arrays[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize(("package", "strategy", "field"), [
    ("ffnet", {"name": "Median"}, "model_config.strategy 'Median'"),
    ("ffnet", {"name": "Krum", "params": {"num_byzantine": 1}}, "model_config.strategy 'Krum'"),
    ("glm", {"name": "MultiKrum"}, "model_config.strategy 'MultiKrum'"),
    ("ffnet", {"name": "FedAvg", "params": {"aggregation": "trimmed_mean"}},
     "model_config.strategy.params.aggregation"),
    ("glm", {"name": "TrimmedMean"}, "model_config.strategy 'TrimmedMean'"),
    ("ffnet", {"name": "FedAdam", "params": {"clip_norm": 1.0}},
     "model_config.strategy.params.clip_norm"),
])
def test_secure_with_robust_aggregation_is_refused_at_creation(
        fed10: LocalFederation, tmp_path: Path, package: str, strategy: dict[str, Any],
        field: str) -> None:
    client = jupyter_fed.connect(embedded=True, state_dir=tmp_path, runners=fed10.runners)
    config = {**(FFNET if package == "ffnet" else {}), "strategy": strategy,
              "secure_aggregation": True}
    try:
        with pytest.raises(ConfigError) as info:
            client.create_fl_session(name="x", package_name=package, num_rounds=1,
                                     min_num_clients=2, model_config=config,
                                     data_config={"predictors": PREDICTORS, "target": "y"})
        assert "model_config.secure_aggregation cannot be combined with" in info.value.message
        assert field in info.value.message
        assert client.sessions() == []
    finally:
        client.close()
