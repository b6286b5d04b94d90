"""A simulation and a real federation holding the same partitions train the same model.

Three real runner processes each hold one partition of a dataset (as a parquet file) and the
shared test set; the simulation gets the whole dataset and the same seed, so it cuts the same
partitions. The same package code and plan run in both, through the same engine: the models
handed back must be identical, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from simhelpers import DATA_CONFIG, ffnet_config, frame, weights

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.simulation import partition

SEED, CLIENTS = 11, 3
CASES = {"ffnet": ffnet_config(),
         "glm": {"ml_task": {"type": "logistic"}}}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame(1500, seed=21), frame(400, seed=22)


@pytest.fixture(scope="module")
def three_runners(tmp_path_factory: pytest.TempPathFactory,
                  data: tuple[pd.DataFrame, pd.DataFrame]) -> Iterator[LocalFederation]:
    train, test = data
    root = tmp_path_factory.mktemp("parity-data")
    test.to_parquet(root / "test.parquet", index=False)
    silos: dict[str, dict[str, Path]] = {}
    for i, rows in enumerate(partition(train, CLIENTS, "iid", seed=SEED)):
        train.iloc[rows].to_parquet(root / f"part{i}.parquet", index=False)
        silos[f"site{i}"] = {f"part{i}": root / f"part{i}.parquet", "test": root / "test.parquet"}
    with LocalFederation(tmp_path_factory.mktemp("parity-runners"), silos, root) as fed:
        yield fed


def _real(fed: LocalFederation, state: Path, package: str, cfg: dict[str, Any],
          rounds: int) -> dict[str, np.ndarray]:
    client = jupyter_fed.connect(embedded=True, state_dir=state, runners=fed.runners)
    try:
        session = client.create_fl_session(name="real", min_num_clients=CLIENTS,
                                           num_rounds=rounds, package_name=package,
                                           model_config=cfg, data_config=DATA_CONFIG).start()
        group, tb = SessionTaskGroup(session), client.task_builder()
        for i in range(CLIENTS):
            group.add_task(tb.hfl(f"part{i}", "test", runner=f"site{i}"))
        assert group.start().wait(240)
        return weights(session)
    finally:
        client.close()


def _simulated(state: Path, package: str, cfg: dict[str, Any], rounds: int,
               data: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, np.ndarray]:
    client = jupyter_fed.connect(embedded=True, state_dir=state)
    try:
        session = client.simulate(package, cfg, DATA_CONFIG, dataset=data[0], test=data[1],
                                  partitions="iid", num_clients=CLIENTS, num_rounds=rounds,
                                  seed=SEED)
        assert session.wait(240)
        return weights(session)
    finally:
        client.close()


@pytest.mark.parametrize("package", sorted(CASES))
def test_simulation_and_real_runners_give_identical_models(
        three_runners: LocalFederation, data: tuple[pd.DataFrame, pd.DataFrame],
        tmp_path: Path, package: str) -> None:
    # Execute
    real = _real(three_runners, tmp_path / "real", package, CASES[package], rounds=3)
    simulated = _simulated(tmp_path / "sim", package, CASES[package], 3, data)

    # Assert
    assert sorted(real) == sorted(simulated)
    for name, value in real.items():
        assert np.array_equal(value, simulated[name]), name
