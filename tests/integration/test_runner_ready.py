"""Runners say when they are warm, and a session's first step waits until every runner is.

Fresh runner processes (not the shared federation, which is warm long before these tests run):
a runner answers HTTP while its worker still imports torch, so right after start its health says
``ready: false``; the session's first step must not be sent before both say ``true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import DATA_CONFIG, model_config

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation


def _fresh(tmp_path: Path, data_root: Path) -> LocalFederation:
    silos = {f"silo{i}": {f"train_silo{i}": data_root / f"train_silo{i}.parquet",
                          "test": data_root / "test.parquet"} for i in range(2)}
    return LocalFederation(tmp_path / "runners", silos, data_root)


def _ready(fed: LocalFederation, name: str) -> Any:
    with fed.processes[name].http(timeout=10) as http:
        return http.get("/v1/health").json()["ready"]


def _session(client: Any, **policy: Any) -> Any:
    session = client.create_fl_session(name="warm", min_num_clients=2, num_rounds=1,
                                       package_name="ffnet", model_config=model_config(),
                                       data_config=DATA_CONFIG, **policy).start()
    tb, group = client.task_builder(), SessionTaskGroup(session)
    for i in range(2):
        group.add_task(tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}"))
    group.start()
    return session


def test_the_first_step_waits_until_every_runner_is_warm(tmp_path: Path, data_root: Path
                                                         ) -> None:
    with _fresh(tmp_path, data_root) as fed:
        assert _ready(fed, "silo0") is False  # still importing torch: nothing has warmed yet
        client = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coord",
                                     runners=fed.runners)
        try:
            session = _session(client)
            assert session.wait(180, raise_on_failure=True)
            assert all(_ready(fed, n) is True for n in ("silo0", "silo1"))
            messages = [line["message"] for line in session.logs()]
        finally:
            client.close()

    waiting = messages.index("waiting for 2 runner(s) to warm up")
    ready = next(i for i, m in enumerate(messages) if m.startswith("runners ready after"))
    first_step = next(i for i, m in enumerate(messages) if "before round 1" in m
                      or m.startswith("round 1/"))
    assert waiting < ready < first_step


def test_a_session_starts_anyway_when_runners_stay_cold_past_ready_timeout(
        tmp_path: Path, data_root: Path) -> None:
    with _fresh(tmp_path, data_root) as fed:
        assert _ready(fed, "silo1") is False
        client = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coord",
                                     runners=fed.runners)
        try:
            session = _session(client, ready_timeout=0)
            assert session.wait(180, raise_on_failure=True)
            messages = [line["message"] for line in session.logs()]
        finally:
            client.close()

    assert any("not ready after 0 s; starting anyway" in m for m in messages), messages
