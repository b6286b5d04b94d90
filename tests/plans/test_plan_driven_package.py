"""A package defined only in the test suite runs end to end, found through an entry point.

Its plan sends each client its own payload and runs two steps per round; the coordinator is
SIGKILLed mid-session and a new one resumes from the last checkpoint, counting no round twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jupyter_fed.demo.federation import LocalFederation

HERE = Path(__file__).parent

DRIVER = """
import json, sys, time
import jupyter_fed
from jupyter_fed import SessionTaskGroup
client = jupyter_fed.connect(embedded=True, state_dir={state!r}, runners={runners!r})
if {start!r}:
    session = client.create_fl_session(name="relay", package_name="relay", num_rounds=4,
                                       min_num_clients=2, model_config={{"sleep": 0.4}},
                                       data_config={{"column": "x0"}}).start()
    tb = client.task_builder()
    SessionTaskGroup(session).add_task(tb.eda("silo0/train_silo0")).add_task(
        tb.eda("silo1/train_silo1")).start()
    print(json.dumps({{"session": session.id}}), flush=True)
    while True:
        print(json.dumps({{"round": session.info()["current_round"]}}), flush=True)
        time.sleep(0.05)
session = client.session({sid!r})
session.wait(120)
result = session.model()
print(json.dumps({{"mean": result.mean, "variance": result.variance,
                   "rounds": [r["round"] for r in session.rounds()],
                   "logs": [r["message"] for r in session.logs()]}}), flush=True)
client.close()
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment where ``relay`` is an installed distribution with an entry point."""
    site = tmp_path_factory.mktemp("site")
    info = site / "jf_relay_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: jf-relay-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[jupyter_fed.packages]\nrelay = jf_relay\n")
    path = os.pathsep.join([str(site), str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("JUPYTER_FED_PACKAGES", None)
    return env


@pytest.fixture(scope="module")
def relay_fed(tmp_path_factory: pytest.TempPathFactory, data_root: Path,
              installed: dict[str, str]) -> Iterator[LocalFederation]:
    silos = {f"silo{i}": {f"train_silo{i}": data_root / f"train_silo{i}.parquet"}
             for i in range(2)}
    env = {name: {"PYTHONPATH": installed["PYTHONPATH"]} for name in silos}
    with LocalFederation(tmp_path_factory.mktemp("relay-runners"), silos, data_root,
                         env=env) as fed:
        yield fed


def _driver(installed: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", DRIVER.format(**kw)], stdout=subprocess.PIPE,
                            text=True, env=installed)


def test_two_steps_per_round_with_per_client_payloads_survive_a_coordinator_kill(
        relay_fed: LocalFederation, installed: dict[str, str], data_root: Path,
        tmp_path: Path) -> None:
    state, runners = str(tmp_path / "coord"), relay_fed.runners
    first = _driver(installed, state=state, runners=runners, start=True, sid="")
    try:
        assert first.stdout is not None
        sid = json.loads(first.stdout.readline())["session"]
        for line in first.stdout:
            if json.loads(line)["round"] >= 2:
                break
        first.send_signal(signal.SIGKILL)  # mid-session, in the middle of round 3's steps
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = subprocess.run([sys.executable, "-c", DRIVER.format(
        state=state, runners=runners, start=False, sid=sid)], capture_output=True, text=True,
        env=installed, timeout=180)
    assert second.returncode == 0, second.stderr[-3000:]
    out = json.loads(second.stdout.strip().splitlines()[-1])
    pooled = np.concatenate([pq.read_table(data_root / f"train_silo{i}.parquet").column("x0")
                             .to_numpy() for i in range(2)])

    assert out["rounds"] == [1, 2, 3, 4]  # each round committed exactly once
    assert any(m.startswith("resuming after round ") for m in out["logs"])
    assert out["mean"] == pytest.approx(pooled.mean(), rel=1e-9, abs=1e-9)
    assert out["variance"] == pytest.approx(pooled.var(), rel=1e-9)
