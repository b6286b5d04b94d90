"""The coordinator dies and comes back; the user cancels; nothing is counted twice or leaked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from sessions import start

HERE = Path(__file__).parent

DRIVER = """
import json, sys, time
sys.path[:0] = {paths!r}
import jf_faults, jupyter_fed
from sessions import start
client = jupyter_fed.connect(embedded=True, state_dir={state!r}, runners={runners!r})
session = start(client, rounds=5, min_clients=2)
print(json.dumps({{"session": session.id}}), flush=True)
while True:
    print(json.dumps({{"round": session.info()["current_round"]}}), flush=True)
    time.sleep(0.05)
"""


def test_a_killed_coordinator_resumes_and_counts_no_round_twice(healthy, faults,
                                                                tmp_path: Path) -> None:
    import jupyter_fed

    for name in ("silo0", "silo1", "silo2"):
        faults.set(name, "sleep:0.4")
    state = str(tmp_path / "coord")
    code = DRIVER.format(paths=[str(HERE), str(HERE.parent)], state=state,
                         runners=healthy.runners)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        sid = json.loads(proc.stdout.readline())["session"]
        for line in proc.stdout:
            if json.loads(line).get("round", 0) >= 2:
                break
        proc.send_signal(signal.SIGKILL)  # mid-session, no chance to clean up
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()

    client = jupyter_fed.connect(embedded=True, state_dir=state)  # resumes on start
    try:
        session = client.session(sid)
        assert session.wait(60)

        rounds = [r["round"] for r in session.rounds()]
        assert rounds == [0, 1, 2, 3, 4, 5, 6]
        assert len(session.metrics().as_dict()["federated_metrics"]) == 6
        assert any("resuming after round" in r["message"] for r in session.logs())
    finally:
        client.close()


def test_cancel_stops_the_runners_steps_and_frees_their_workers(client3, healthy, faults) -> None:
    for name in ("silo0", "silo1", "silo2"):
        faults.set(name, "sleep:60")
    session = start(client3, rounds=2, min_clients=3)
    deadline = time.monotonic() + 30
    while not all(c.get("step") for c in session.info()["clients"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)

    session.cancel()

    assert session.status() == "cancelled"
    # the client on silo0 (clients join in any order on a busy machine)
    idx = next(c["idx"] for c in session.info()["clients"] if c["runner"] == "silo0")
    task = f"{session.id}.a0.r1.fit.c{idx}"
    with healthy.processes["silo0"].http(timeout=30) as http:
        state = http.get(f"/v1/tasks/{task}", params={"wait": 5}).json()
    assert state.get("state") == "cancelled", state
    faults.clear()  # the workers are free again: a new session runs at once
    again = start(client3, rounds=1, min_clients=3)
    assert again.wait(30)
