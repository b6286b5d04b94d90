"""Runners that die, hang, crawl or restart in the middle of a session."""

from __future__ import annotations

import time

import pytest
from sessions import dropped_by_round, start, wait_for_round

from jupyter_fed.errors import SessionFailed

SLOW = "sleep:0.6"


def test_one_of_three_killed_mid_round_completes_without_it(client3, healthy, faults) -> None:
    for name in ("silo0", "silo1", "silo2"):
        faults.set(name, SLOW)
    session = start(client3, rounds=3, min_clients=2, max_retries=1)
    wait_for_round(session, 1)

    healthy.processes["silo2"].kill()  # during round 2
    assert session.wait(60)

    rounds = session.rounds()
    by_round = {r["round"]: r["info"] for r in rounds if "duration" in r["info"]}
    assert by_round[1]["clients"] == ["silo0/train_silo0", "silo1/train_silo1", "silo2/train_silo2"]
    assert "silo2/train_silo2" in by_round[2]["dropped"]
    # the aggregate of the round that lost silo2 holds exactly the two that answered
    assert set(by_round[2]["num_examples"]) == {"silo0/train_silo0", "silo1/train_silo1"}
    assert [r["round"] for r in rounds] == [0, 1, 2, 3, 4]  # each round once, plus final evaluation
    status = {c["client_id"]: c for c in session.info()["clients"]}
    assert status["silo2/train_silo2"]["status"] == "dropped"
    assert "silo2" in status["silo2/train_silo2"]["error"]


def test_two_of_three_killed_fails_the_round_and_keeps_the_last_model(client3, healthy,
                                                                      faults) -> None:
    for name in ("silo0", "silo1", "silo2"):
        faults.set(name, SLOW)
    session = start(client3, rounds=4, min_clients=2, max_retries=1, round_timeout=30)
    wait_for_round(session, 1)
    killed_at = time.monotonic()

    healthy.processes["silo1"].kill()
    healthy.processes["silo2"].kill()
    with pytest.raises(SessionFailed) as info:
        session.wait(60)

    assert time.monotonic() - killed_at < 30  # within the round timeout
    assert "round 2 failed: 1 client(s) answered, 2 required" in info.value.message
    assert session.status() == "failed"
    assert session.model().round == 1  # nothing of the failed round was stored
    assert [r["round"] for r in session.rounds()] == [0, 1]


def test_a_runner_that_accepts_and_never_answers_is_dropped(client3, healthy, faults) -> None:
    from proxy import BlackholeProxy

    for name in ("silo0", "silo1", "silo2"):  # rounds slow enough to freeze it mid-session
        faults.set(name, "sleep:0.5")
    silo2 = healthy.processes["silo2"]
    proxy = BlackholeProxy(silo2.port)
    try:
        # the same runner, reached through the proxy (TLS passes through untouched)
        client3.add_runner("silo2", proxy.url.replace("http:", "https:"), silo2.token,
                           silo2.fingerprint)
        session = start(client3, rounds=3, min_clients=2, heartbeat_timeout=1.5, max_retries=2)
        wait_for_round(session, 1)
        proxy.freeze()
        started = time.monotonic()

        assert session.wait(60)

        assert time.monotonic() - started < 15
        dropped = dropped_by_round(session)
        assert ["silo2/train_silo2"] in (dropped[2], dropped[3])
        msg = next(c["error"] for c in session.info()["clients"] if c["runner"] == "silo2")
        assert "stopped answering" in msg or "did not answer in time" in msg
    finally:
        proxy.close()


def test_a_slow_runner_that_keeps_answering_is_not_dropped(client3, faults) -> None:
    faults.set("silo2", "sleep:3")
    session = start(client3, rounds=2, min_clients=3, heartbeat_timeout=1.0)

    assert session.wait(60)

    assert all(not d for d in dropped_by_round(session).values())
    assert all(r["info"]["duration"] >= 3 for r in session.rounds() if "duration" in r["info"])


def test_a_runner_restarted_mid_session_is_retried_and_keeps_its_state(client3, healthy,
                                                                     faults) -> None:
    for name in ("silo0", "silo1"):
        faults.set(name, SLOW)
    session = start(client3, ("silo0", "silo1"), rounds=3, min_clients=2, max_retries=4)
    wait_for_round(session, 1)
    silo1 = healthy.processes["silo1"]

    silo1.restart()
    assert session.wait(60)

    assert all(not d for d in dropped_by_round(session).values())
    assert any("retrying" in row["message"] for row in session.logs())
    with silo1.http() as http:  # the old token still works
        names = [d["name"] for d in http.get("/v1/datasets").json()]
        assert names == ["test", "train_silo1"]
        first = f"{session.id}.a0.r1.fit.c1"  # finished before the restart; still retrievable
        assert http.get(f"/v1/tasks/{first}/result").status_code == 200
