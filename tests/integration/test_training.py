"""A real FFNet session across two runner processes, driven through the SDK."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import DATA_CONFIG, FEATURES, model_config

from jupyter_fed import SessionTaskGroup
from jupyter_fed.packages._metrics import binary_auc


def _train(client, rounds: int = 3, **cfg):
    session = client.create_fl_session(
        name="it", description="integration", min_num_clients=2, num_rounds=rounds,
        package_name="iai_ffnet", model_config=model_config(**cfg), data_config=DATA_CONFIG).start()
    tb = client.task_builder()
    ctx = (SessionTaskGroup(session)
           .add_task(tb.hfl(train_dataset_name="train_silo0", test_dataset_name="test"))
           .add_task(tb.hfl(train_dataset_name="train_silo1", test_dataset_name="test"))
           .start())
    assert ctx.wait(120, 0.5) is True
    return session, ctx


def test_two_clients_three_rounds_learn_the_signal(client, data_root: Path) -> None:
    session, ctx = _train(client)

    metrics = session.metrics().as_dict()
    assert session.status() == "completed"
    assert metrics["federated_metrics"][-1]["roc_auc"] > 0.7
    # the model actually handed back scores well on the held-out rows, computed here, not by runners
    test = pq.read_table(data_root / "test.parquet").to_pandas()
    prob = session.model().predict(test)[:, 1]
    assert binary_auc(test["y"].to_numpy() == 1, prob) > 0.7
    assert {c["status"] for c in (t.status() for t in ctx.contexts.values())} == {"done"}


def test_metrics_dict_has_the_reference_shape(client) -> None:
    session, _ = _train(client, rounds=2)

    m = session.metrics().as_dict()

    assert set(m) == {"session_id", "federated_metrics", "client_metrics",
                      "latest_global_model_federated_loss"}
    assert m["session_id"] == session.id
    assert len(m["federated_metrics"]) == len(m["client_metrics"]) == 3  # initial + one per round
    assert set(m["federated_metrics"][0]) == {"loss", "accuracy", "roc_auc"}
    for per_round in m["client_metrics"]:
        assert set(per_round) == {"silo0/train_silo0", "silo1/train_silo1"}
        for values in per_round.values():
            assert set(values) == {"test_loss", "test_accuracy", "test_roc_auc", "test_num_examples"}
            assert values["test_num_examples"] == 1000
    assert m["latest_global_model_federated_loss"] == m["federated_metrics"][-1]["loss"]
    # federated loss is the example-weighted mean of the clients' losses
    last = m["client_metrics"][-1].values()
    expected = sum(v["test_loss"] * v["test_num_examples"] for v in last) / 2000
    assert math.isclose(m["federated_metrics"][-1]["loss"], expected, rel_tol=1e-12)


def test_as_pytorch_predicts_like_the_runner_side_model(client, data_root: Path) -> None:
    import torch

    session, _ = _train(client, rounds=2)

    net = session.model().as_pytorch()
    test = pq.read_table(data_root / "test.parquet").to_pandas()
    x = torch.tensor(test[FEATURES].to_numpy(np.float32))
    y = torch.tensor(test["y"].to_numpy(np.int64))
    with torch.no_grad():
        local_loss = float(torch.nn.functional.cross_entropy(net(x), y))

    assert isinstance(net, torch.nn.Module)
    runner_loss = session.metrics().as_dict()["client_metrics"][-1]["silo0/train_silo0"]["test_loss"]
    assert local_loss == pytest.approx(runner_loss, rel=1e-6)


def test_save_best_model_returns_the_best_round(client) -> None:
    # A learning rate this high makes later rounds worse than some earlier one.
    session, _ = _train(client, rounds=4, save_best_model={"metric": "loss", "mode": "min"},
                        optimizer={"name": "SGD", "params": {"learning_rate": 3.0}})

    losses = [m["loss"] for m in session.metrics().as_dict()["federated_metrics"]]
    model = session.model()

    assert model.round == int(np.nanargmin(losses))


def test_regression_reports_r2(client) -> None:
    session = client.create_fl_session(
        name="reg", min_num_clients=2, num_rounds=2, package_name="ffnet",
        model_config=model_config(ml_task={"type": "regression"},
                                  model={"params": {"input_size": 15, "hidden_layer_sizes": [8],
                                                    "output_size": 1}},
                                  optimizer={"name": "SGD", "params": {"learning_rate": 0.02}}),
        data_config={"predictors": FEATURES, "target": "y"}).start()
    tb = client.task_builder()
    SessionTaskGroup(session).add_task(tb.hfl("train_silo0", "test")).add_task(
        tb.hfl("train_silo1", "test")).start().wait(120)

    fed = session.metrics().as_dict()["federated_metrics"]

    assert set(fed[-1]) == {"loss", "r2"}
    assert fed[-1]["loss"] < fed[0]["loss"]
    assert fed[-1]["r2"] > 0.1


def test_plot_returns_a_figure_with_one_panel_per_metric(client) -> None:
    session, _ = _train(client, rounds=1)

    fig = session.metrics().plot()

    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "roc_auc"]
