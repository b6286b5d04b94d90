"""The session options every training package shares, through real sessions on two runners:
``seed`` (the same seed gives the same model, bit for bit), ``balance_train_datasets`` and
``save_best_model``."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DATA_CONFIG, model_config

from jupyter_fed import SessionTaskGroup


def train(client, package: str, config: dict, rounds: int):
    session = client.create_fl_session(name=package, min_num_clients=2, num_rounds=rounds,
                                       package_name=package, model_config=config,
                                       data_config=DATA_CONFIG).start()
    tb = client.task_builder()
    group = SessionTaskGroup(session)
    for i in range(2):
        group.add_task(tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}"))
    assert group.start().wait(180, 0.1)
    return session


def arrays(model) -> dict[str, np.ndarray]:
    return dict(getattr(model, "weights", None) or model.arrays)


CASES = {
    "ffnet": (model_config(seed=11, balance_train_datasets=True), 2),
    "glm": ({"solver": "sgd", "ml_task": {"type": "logistic"}, "balance_train_datasets": True,
             "seed": 11, "optimizer": {"name": "SGD", "params": {"learning_rate": 0.05}}}, 2),
    "gbm": ({"model": {"params": {"max_depth": 3, "max_iter": 4}},
             "balance_train_datasets": True, "seed": 11}, 4),
}


@pytest.mark.parametrize("package", list(CASES))
def test_the_same_seed_gives_the_same_model(client, package) -> None:
    config, rounds = CASES[package]

    first = arrays(train(client, package, config, rounds).model())
    second = arrays(train(client, package, config, rounds).model())

    assert set(first) == set(second)
    for key, value in first.items():
        np.testing.assert_array_equal(second[key], value, err_msg=f"{package}: {key}")


def test_another_seed_draws_another_undersample(client) -> None:
    config, rounds = CASES["gbm"]
    first = arrays(train(client, "gbm", config, rounds).model())
    other = arrays(train(client, "gbm", {**config, "seed": 12}, rounds).model())
    assert not np.array_equal(first["trees.value"], other["trees.value"])


def test_save_best_model_hands_back_the_best_gbm_model(client) -> None:
    config = {"model": {"params": {"max_depth": 3, "max_iter": 6, "learning_rate": 0.8}},
              "save_best_model": {"metric": "roc_auc", "mode": "max"}}

    session = train(client, "gbm", config, 6)

    auc = [m["roc_auc"] for m in session.metrics().as_dict()["federated_metrics"]]
    best = int(np.argmax(auc))
    assert session.model().n_iter_ == best
    assert session.rounds()[-1]["info"]["best_model_round"] == best
