"""Simulated sessions on each engine: the real engine, plan and metrics; the same model on all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from simhelpers import DATA_CONFIG, ffnet_config, frame, weights

import jupyter_fed
from jupyter_fed import simulation


@pytest.fixture()
def sim_client(tmp_path: Path) -> Any:
    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coordinator")
    yield c
    c.close()


def _simulate(client: Any, engine: str, **kw: Any) -> Any:
    session = client.simulate("ffnet", ffnet_config(), DATA_CONFIG, dataset=frame(1200),
                              test=frame(300, seed=1), partitions="dirichlet:1.0",
                              num_clients=6, num_rounds=2, engine=engine, seed=3, **kw)
    assert session.wait(240, raise_on_failure=False), session.info()
    assert session.status() == "completed", session.info()["error"]
    return session


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path_factory.mktemp("local"))
    try:
        return weights(_simulate(c, "local"))
    finally:
        c.close()


def test_local_simulation_is_an_ordinary_session_marked_as_simulated(sim_client: Any) -> None:
    # Execute
    session = _simulate(sim_client, "local")

    # Assert: the coordinator's own session, metrics, logs and model
    info = session.info()
    assert info["simulation"]["engine"] == "local"
    assert info["simulation"]["num_clients"] == 6
    assert info["simulation"]["partition"] == "dirichlet:1"
    assert sum(info["simulation"]["rows"]) == 1200
    assert [c["client_id"] for c in info["clients"]] == [f"client-{i:03d}" for i in range(6)]
    metrics = session.metrics().as_dict()
    assert len(metrics["federated_metrics"]) == 3  # the initial model and two rounds
    assert metrics["federated_metrics"][-1]["roc_auc"] > 0.6
    assert any("simulated: 6 client(s)" in line["message"] for line in session.logs())
    prob = session.model().predict(frame(200, seed=9))
    assert prob.shape == (200, 2)
    # the simulated runner is gone with its session: nothing left in the catalog
    assert not any(r.startswith("sim-") for r in sim_client.datasets().get("runner", []))


def test_local_engine_with_threads_trains_the_same_model(sim_client: Any,
                                                          local_model: dict[str, np.ndarray]
                                                          ) -> None:
    got = weights(_simulate(sim_client, "local", engine_options={"workers": 2}))

    assert all(np.array_equal(got[k], local_model[k]) for k in local_model)


def test_dask_engine_hosts_many_clients_per_worker_and_trains_the_same_model(
        sim_client: Any, local_model: dict[str, np.ndarray]) -> None:
    session = _simulate(sim_client, "dask", engine_options={"workers": 2})

    assert session.info()["simulation"]["hosts"] == 2  # six clients on two worker processes
    got = weights(session)
    assert all(np.array_equal(got[k], local_model[k]) for k in local_model)


@pytest.mark.timeout(400)
def test_ray_engine_hosts_many_clients_per_actor_and_trains_the_same_model(
        sim_client: Any, local_model: dict[str, np.ndarray]) -> None:
    pytest.importorskip("ray")
    session = _simulate(sim_client, "ray", engine_options={"num_cpus": 2,
                                                           "object_store_mb": 100})

    assert session.info()["simulation"]["hosts"] == 2
    got = weights(session)
    assert all(np.array_equal(got[k], local_model[k]) for k in local_model)


def test_unknown_engine_and_bad_partition_are_refused_before_anything_starts(
        sim_client: Any) -> None:
    from jupyter_fed.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown simulation engine"):
        sim_client.simulate("ffnet", ffnet_config(), DATA_CONFIG, dataset=frame(300),
                            num_clients=2, engine="spark")
    with pytest.raises(ConfigError, match="unknown partition"):
        sim_client.simulate("ffnet", ffnet_config(), DATA_CONFIG, dataset=frame(300),
                            num_clients=2, partitions="zipf")
    assert sim_client.sessions() == []


def test_a_partition_below_the_runner_minimum_is_refused_as_a_runner_refuses_it(
        sim_client: Any) -> None:
    # Explicit partitions: the last has 12 rows, under the default minimum (16 columns + 5).
    parts = [np.arange(0, 100), np.arange(100, 200), np.arange(200, 212)]
    session = sim_client.simulate("ffnet", ffnet_config(), DATA_CONFIG, dataset=frame(300),
                                  partitions=parts, num_rounds=1, min_num_clients=2)
    session.wait(120, raise_on_failure=False)

    assert session.status() == "completed"
    dropped = [c for c in session.info()["clients"] if c["status"] == "dropped"]
    assert [c["client_id"] for c in dropped] == ["client-002"]
    assert "fewer than the 21 a runner requires" in dropped[0]["error"]


def test_privacy_budgets_are_simulated_on_a_ledger_of_the_simulation(sim_client: Any) -> None:
    # Prepare: DP-SGD with epsilon 2 over 2 rounds, datasets allowing epsilon 1.5 each
    cfg = ffnet_config(differential_privacy_params={"epsilon": 2.0, "max_grad_norm": 1.0})

    # Execute
    within = sim_client.simulate("ffnet", cfg, DATA_CONFIG, dataset=frame(900),
                                 test=frame(300, seed=1), num_clients=3, num_rounds=1,
                                 policy={"epsilon_budget": 2.5})
    within.wait(120)
    beyond = sim_client.simulate("ffnet", cfg, DATA_CONFIG, dataset=frame(900),
                                 test=frame(300, seed=1), num_clients=3, num_rounds=1,
                                 policy={"epsilon_budget": 1.5})
    beyond.wait(120, raise_on_failure=False)

    # Assert: the runner's arithmetic — each partition charged its epsilon, flagged simulated
    spent = simulation.budget(within.id)
    assert sorted(r["dataset"] for r in spent) == ["part-000", "part-001", "part-002"]
    assert all(r["simulated"] and r["spent"] == pytest.approx(2.0) for r in spent)
    assert beyond.status() == "failed"
    assert "privacy budget exceeded" in beyond.info()["error"]
    assert simulation.budget(beyond.id) == []
