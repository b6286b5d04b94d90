"""EDA sessions across two real runners: noisy histograms, explored in the kernel."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from jupyter_fed import SessionTaskGroup
from jupyter_fed.errors import ConfigError


@pytest.fixture()
def client(principal_client):
    """A fresh principal, so earlier tests' budgets and cached answers are not its own."""
    return principal_client


def _eda(client, data_config, **kw):
    session = client.create_eda_session("eda", "test", data_config=data_config, **kw).start()
    tb = client.task_builder()
    group = SessionTaskGroup(session)
    for name in data_config:
        group.add_task(tb.eda(name))
    group.start().wait(60)
    return session


def test_eda_results_explore_like_the_reference(client, data_root) -> None:
    session = _eda(client, {"train_silo0": [1, "x2", "y"], "train_silo1": ["x1", "x2"]},
                   epsilon=4.0)

    results = session.results()
    silo0 = pq.read_table(data_root / "train_silo0.parquet").to_pandas()

    assert list(results) == ["train_silo0", "train_silo1"]
    assert list(results["train_silo0"].columns) == ["x0", "x2", "y"]  # index 1 = first column
    assert results["train_silo0"]["y"].kind == "categorical"
    assert results["train_silo0"]["y"].uniques() == [0.0, 1.0]
    assert abs(results["train_silo0"]["x0"].mean() - silo0["x0"].mean()) < 0.25
    assert abs(results["train_silo0"]["y"].count() - len(silo0)) < 60
    means = results.mean()
    assert math.isnan(means.loc["train_silo1", "x0"])  # absent from that dataset
    assert results["train_silo0"].describe().shape == (10, 3)  # + clipped fraction and note
    assert results["train_silo0"][["x0", "x2"]].median().shape == (2,)
    assert len(results["train_silo1"].plot_hist().axes) >= 2
    pooled = results.combined()["x2"]
    assert abs(pooled.count() - 4000) < 200


def test_noisy_bounds_never_equal_the_exact_extremes(client, data_root) -> None:
    session = _eda(client, {"train_silo0": ["x0", "x5"]}, epsilon=2.0)
    silo0 = pq.read_table(data_root / "train_silo0.parquet").to_pandas()

    col = session.results()["train_silo0"]["x0"]

    assert col.data["bounds"] == "private"  # DP quantiles, not the data's extremes
    assert col.min() != silo0["x0"].min() and col.max() != silo0["x0"].max()
    assert col.clipped_fraction < 0.5  # and the release says how many rows they clip


def test_eda_debits_the_ledger_and_refuses_overdraft(client, federation) -> None:
    session = _eda(client, {"train_silo1": ["x0"]}, epsilon=3.0)
    with federation.processes["silo1"].http() as admin:
        spent = admin.get("/v1/budget", params={"principal": client.user}).json()

    assert session.status() == "completed"
    assert [(r["dataset"], r["spent"]) for r in spent] == [("train_silo1", 3.0)]
    with pytest.raises(Exception, match=r"privacy budget exceeded.*7 of 10 remains"):
        _eda(client, {"train_silo1": ["x0"]}, epsilon=7.5)
    refused = client.sessions()[-1]
    with federation.processes["silo1"].http() as admin:
        spent = admin.get("/v1/budget", params={"principal": client.user}).json()
        task = admin.get(f"/v1/tasks/{refused.id}.a0.r1.compute.c0")
        audit = admin.get("/v1/audit", params={"principal": client.user, "limit": 3}).json()
    assert spent[0]["spent"] == 3.0  # the refused step cost nothing
    assert task.status_code == 404  # and never became a task: no row was read
    assert any(r["path"] == "/v1/tasks" and r["status"] == 403 for r in audit)


def test_bad_eda_config_names_the_field(client) -> None:
    with pytest.raises(ConfigError, match=r"model_config\.mechanism"):
        client.create_eda_session("x", data_config={"a": []}, mechanism="uniform")


def test_suppression_hides_small_bins(client) -> None:
    session = _eda(client, {"train_silo1": ["x3"]}, epsilon=0.5, bins=200)
    col = session.results()["train_silo1"]["x3"]
    nonzero = col.counts[col.counts > 0]
    assert nonzero.size and nonzero.min() >= 10
    assert np.isfinite(col.mean())


def test_a_dataset_that_requires_dp_refuses_non_private_steps(client, federation) -> None:
    from helpers import DATA_CONFIG, model_config

    proc = federation.processes["silo1"]
    with proc.http() as admin:
        policy = admin.get("/v1/datasets/train_silo1/policy").json()
        admin.put("/v1/datasets/train_silo1/policy", json={**policy, "require_dp": True})
    try:
        eda = _eda(client, {"train_silo1": ["x0"]}, epsilon=1.0)  # DP histograms: allowed
        session = client.create_fl_session(name="plain", min_num_clients=1, num_rounds=1,
                                           model_config=model_config(),
                                           data_config=DATA_CONFIG).start()
        with pytest.raises(Exception, match="only allows differentially private steps"):
            SessionTaskGroup(session).add_task(
                client.task_builder().hfl("train_silo1", runner="silo1")).start().wait(60)
    finally:
        with proc.http() as admin:
            admin.put("/v1/datasets/train_silo1/policy", json=policy)
    assert eda.status() == "completed"
