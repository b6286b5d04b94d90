"""DP-SGD ffnet sessions across real runner processes: privacy reports, ledgers, budget refusals."""

from __future__ import annotations

import shutil
import uuid

import pytest
from helpers import DATA_CONFIG, model_config

from jupyter_fed import SessionTaskGroup
from jupyter_fed.errors import SessionFailed

DP = {"epsilon": 3.0, "max_grad_norm": 1.0}


def _spent(client, runner: str, dataset: str) -> float:
    return sum(r["spent"] for r in client.auth(runner).budget() if r["dataset"] == dataset)


def _dp_session(client, rounds: int, min_num_clients: int = 2):
    return client.create_fl_session(
        name="dp", min_num_clients=min_num_clients, num_rounds=rounds, package_name="iai_ffnet",
        model_config=model_config(differential_privacy_params=DP), data_config=DATA_CONFIG).start()


def test_dp_session_reports_its_spend_and_debits_the_ledgers(client) -> None:
    before = {i: _spent(client, f"silo{i}", f"train_silo{i}") for i in range(2)}
    session = _dp_session(client, rounds=3)
    tb = client.task_builder()
    ctx = (SessionTaskGroup(session)
           .add_task(tb.hfl(train_dataset_name="train_silo0", test_dataset_name="test"))
           .add_task(tb.hfl(train_dataset_name="train_silo1", test_dataset_name="test"))
           .start())

    assert ctx.wait(120, 0.5) is True
    fit_rounds = [r for r in session.rounds() if "train" in r["info"]]
    assert [r["round"] for r in fit_rounds] == [1, 2, 3]
    for r in fit_rounds:
        assert set(r["info"]["train"]) == {"silo0/train_silo0", "silo1/train_silo1"}
        for cid, train in r["info"]["train"].items():
            report = train["privacy"]
            print(f"\nround {r['round']} {cid}: epsilon spent {report['epsilon_spent']:.4f} of "
                  f"{report['epsilon_budgeted']:g} (delta {report['delta']:g}, noise multiplier "
                  f"{report['noise_multiplier']:.3f})", end="")
            assert report["epsilon_budgeted"] == 1.0
            assert 0.9 < report["epsilon_spent"] <= 1.0 + 1e-6
            assert report["delta"] == pytest.approx(1 / 2000 ** 2)  # 1e-5 / 3, capped at 1/n²
            assert "train_loss" not in train
    # the runners debited epsilon / num_rounds per fit step, 3.0 in all, and nothing for evaluate
    for i in range(2):
        assert _spent(client, f"silo{i}", f"train_silo{i}") - before[i] == pytest.approx(3.0,
                                                                                          abs=1e-9)
    assert all(r["dataset"] != "test" for r in client.auth("silo0").budget())
    # the DP weights come back under the network's own names and load into a model
    fed = session.metrics().as_dict()["federated_metrics"]
    assert len(fed) == 4 and set(fed[-1]) == {"loss", "accuracy", "roc_auc"}
    assert session.model().as_pytorch() is not None


def test_dp_session_beyond_the_budget_is_refused_by_the_runner(client, federation, data_root
                                                               ) -> None:
    # A file of its own: the same file under another name would share train_silo0's budget.
    name = f"dp_capped_{uuid.uuid4().hex[:8]}"
    shutil.copy(data_root / "train_silo0.parquet", data_root / f"{name}.parquet")
    with federation.processes["silo0"].http() as http:
        resp = http.post("/v1/datasets", json={"name": name,
                                               "path": str(data_root / f"{name}.parquet")})
        assert resp.status_code == 201, resp.text
    try:
        client.auth("silo0").set_policy(name, epsilon_budget=2.0)
        session = _dp_session(client, rounds=3, min_num_clients=1)  # asks for 3.0 in all

        ctx = SessionTaskGroup(session).add_task(
            client.task_builder().hfl(name, "test", runner="silo0")).start()

        with pytest.raises(SessionFailed) as failed:
            ctx.wait(60, 0.5)
    finally:  # later tests count the shared runners' datasets
        with federation.processes["silo0"].http() as http:
            http.delete(f"/v1/datasets/{name}")
    print(f"\nsession: {failed.value.message}")
    assert "privacy budget exceeded" in failed.value.message
    (task,) = ctx.contexts.values()
    error = task.status()["error"]
    print(f"client: {error}")
    assert "privacy budget exceeded" in error
    assert "needs epsilon 1, 0 of 2 remains" in error
    assert any("privacy budget exceeded" in row["message"] for row in session.logs())
    # rounds 1 and 2 ran and were charged; round 3 was refused before it read a row
    assert [r["round"] for r in session.rounds() if "train" in r["info"]] == [1, 2]
    assert _spent(client, "silo0", name) == pytest.approx(2.0, abs=1e-9)
