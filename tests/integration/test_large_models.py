"""A model above the coordinator's large-transfer threshold travels in budgeted slots (upload,
then a poll, then the result's download: ``coordinator/transfers.py``) and trains exactly as a
small one does in the one-request path: the same seed gives the same model, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import DATA_CONFIG, model_config

import jupyter_fed
from jupyter_fed import SessionTaskGroup

WIDE = model_config(model={"params": {"input_size": 15, "hidden_layer_sizes": [256, 256],
                                      "output_size": 2}})
"""About 70,000 parameters: a 280 KB payload."""


def _train(federation, state_dir: Path) -> tuple[dict[str, np.ndarray], object]:
    client = jupyter_fed.connect(embedded=True, state_dir=state_dir, runners=federation.runners)
    try:
        session = client.create_fl_session(name="wide", min_num_clients=2, num_rounds=2,
                                           package_name="ffnet", model_config=WIDE,
                                           data_config=DATA_CONFIG).start()
        tb, group = client.task_builder(), SessionTaskGroup(session)
        for i in range(2):
            group.add_task(tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}"))
        assert group.start().wait(300, 0.1)
        transfers = client._backend.coordinator.ctx.transfers
        return dict(session.model().weights), transfers
    finally:
        client.close()


def test_a_large_model_moves_within_the_budget_and_trains_the_same(federation, tmp_path: Path,
                                                                   monkeypatch) -> None:
    plain, unbounded = _train(federation, tmp_path / "plain")
    monkeypatch.setenv("JUPYTER_FED_TRANSFER_BUDGET_MB", "0.5")  # 512 KB: one upload at a time
    slotted, bounded = _train(federation, tmp_path / "slotted")

    assert unbounded.peak == 0  # 280 KB is far below the default threshold of 4 MiB
    assert bounded.large < 280_000 <= bounded.peak <= bounded.budget == 2**19
    assert plain.keys() == slotted.keys()
    for name in plain:
        np.testing.assert_array_equal(plain[name], slotted[name])
