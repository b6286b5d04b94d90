"""The engine's secure sum through real runners: equal to the plain sum, with dropouts.

A test-only package (``jf_secsum``) sums three arrays per silo — a vector, a matrix and a long
seeded vector — with ``SessionIO.step(..., secure=SecureSum(...))``. The secure total must equal
the plain sum within the quantisation error ``n * precision / 2`` with 3, 5 and 10 clients, with
0, 1 and 2 clients failing after the key agreement, and with a runner killed mid-round; beyond
the threshold the secure step starts again without the dropped clients, or the session fails
cleanly. Nothing the coordinator stores or logs holds a client's values.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jf_secsum import COLUMNS, silo_arrays
from secagg_support import NAMES, silo_rows

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.errors import SessionFailed

PRECISION = 1e-6


def run_session(fed: LocalFederation, state: Path, k: int, model_config: dict[str, Any],
                during: Any = None, rounds: int = 1, **policy: Any) -> tuple[Any, Any]:
    """A ``secsum`` session over silo0..silo{k-1}; returns (session, client)."""
    client = jupyter_fed.connect(embedded=True, state_dir=state, runners=fed.runners)
    session = client.create_fl_session(
        name="secsum", package_name="secsum", num_rounds=rounds, min_num_clients=2,
        model_config={"precision": PRECISION, **model_config}, data_config={}, **policy).start()
    tb = client.task_builder()
    group = SessionTaskGroup(session)
    for name in NAMES[:k]:
        group.add_task(tb.eda("train", runner=name))
    ctx = group.start()
    if during is not None:
        during(session)
    ctx.wait(240)
    return session, client


def plain_sum(root: Path, seeds: dict[str, int], width: int = 7) -> dict[str, np.ndarray]:
    """The plain sum of what the clients in ``seeds`` contributed (client id → its seed)."""
    out: dict[str, np.ndarray] = {}
    for cid, seed in seeds.items():
        i = NAMES.index(cid.split("/")[0])
        for key, value in silo_arrays(silo_rows(root, i, COLUMNS), seed, width).items():
            out[key] = out.get(key, 0) + value
    return out


def check_total(result: Any, root: Path, survivors: int) -> None:
    seeds = result.meta["seeds"]
    assert len(seeds) == survivors
    expected = plain_sum(root, seeds)
    bound = survivors * PRECISION / 2 + 1e-9  # the stated quantisation error (+ float rounding)
    for key, value in expected.items():
        got = result.total[key]
        assert got.shape == value.shape
        assert np.max(np.abs(got - value)) <= bound * max(1.0, np.max(np.abs(value)) * 1e-9), key
    assert result.meta["leaked"] == []  # no secured tensor reached the plan one client at a time


@pytest.mark.parametrize("k", [3, 5, 10])
def test_secure_sum_equals_plain_sum(all_up: LocalFederation, silo_root: Path, tmp_path: Path,
                                     k: int) -> None:
    session, client = run_session(all_up, tmp_path / "coord", k, {})
    try:
        result = session.model()
        assert result.meta["dropped"] == []
        check_total(result, silo_root, k)
    finally:
        client.close()


def test_later_rounds_use_the_keys_and_shares_prefetched(all_up: LocalFederation,
                                                         silo_root: Path, tmp_path: Path) -> None:
    """Round r's keys ride on round r-1's masked step and its shares on the unmask exchange;
    a dropout in round 1 (silo1) leaves them agreed among the four others, which round 2 uses."""
    session, client = run_session(all_up, tmp_path / "coord", 5, {"fail": ["silo1"]}, rounds=3)
    try:
        result = session.model()
        assert result.meta["round"] == 3
        check_total(result, silo_root, 4)
        logs = [r["message"] for r in session.logs() if "secure sum of" in r["message"]]
        assert len(logs) == 3
        assert "prefetched" not in logs[0] and "masks of 1 dropped" in logs[0]
        assert all("keys and shares prefetched" in m for m in logs[1:])
    finally:
        client.close()


@pytest.mark.parametrize(("k", "failing"), [(3, 1), (5, 1), (5, 2), (10, 2)])
def test_dropouts_after_the_key_agreement_still_unmask(all_up: LocalFederation, silo_root: Path,
                                                       tmp_path: Path, k: int, failing: int
                                                       ) -> None:
    fail = list(NAMES[1:1 + failing])  # they fail inside the package step, after sharing
    session, client = run_session(all_up, tmp_path / "coord", k, {"fail": fail})
    try:
        result = session.model()
        assert sorted(d.split("/")[0] for d in result.meta["dropped"]) == fail
        check_total(result, silo_root, k - failing)
        logs = [r["message"] for r in session.logs()]
        assert any(f"masks of {failing} dropped client(s) removed" in m for m in logs)
        assert not any("starting it again" in m for m in logs)  # unmasked in one go
    finally:
        client.close()


def test_a_runner_killed_mid_round_is_unmasked_around(all_up: LocalFederation, silo_root: Path,
                                                      tmp_path: Path) -> None:
    """silo2 sleeps in the package step; its runner is killed then (after it shared)."""
    victim = all_up.processes["silo2"]

    def kill_when_masking(session: Any) -> None:
        def watch() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                live = {c["client_id"]: c for c in session.info()["clients"]}
                if any(c.get("step") == "contribute" for c in live.values()):
                    time.sleep(0.3)
                    victim.kill()
                    return
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()

    session, client = run_session(all_up, tmp_path / "coord", 5, {"sleep": {"silo2": 5}},
                                  kill_when_masking, heartbeat_timeout=3, max_retries=0)
    try:
        result = session.model()
        assert [d.split("/")[0] for d in result.meta["dropped"]] == ["silo2"]
        logs = [r["message"] for r in session.logs()]
        print("\n".join(logs))
        assert any("masks of 1 dropped client(s) removed" in m for m in logs)
        check_total(result, silo_root, 4)
    finally:
        client.close()


def test_beyond_the_threshold_the_step_starts_again_without_the_dropped(
        all_up: LocalFederation, silo_root: Path, tmp_path: Path) -> None:
    """5 clients (threshold 3), 3 fail: the 2 left cannot open the sum, so it runs again on them."""
    fail = ["silo1", "silo2", "silo3"]
    session, client = run_session(all_up, tmp_path / "coord", 5, {"fail": fail})
    try:
        result = session.model()
        check_total(result, silo_root, 2)
        assert sorted(s.split("/")[0] for s in result.meta["seeds"]) == ["silo0", "silo4"]
        assert any("starting it again" in r["message"] for r in session.logs())
    finally:
        client.close()


def test_beyond_the_threshold_with_too_few_left_fails_cleanly(all_up: LocalFederation,
                                                               tmp_path: Path) -> None:
    with pytest.raises(SessionFailed, match=r"secure sum needs at least 2 clients|required"):
        run_session(all_up, tmp_path / "coord", 3, {"fail": ["silo1", "silo2"]})
    client = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coord",
                                 runners=all_up.runners)
    try:
        (session,) = client.sessions()
        assert session.status() == "failed"
        assert session.rounds() == []  # nothing committed
    finally:
        client.close()


def test_the_coordinator_keeps_no_individual_value(all_up: LocalFederation, silo_root: Path,
                                                   tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                   ) -> None:
    """Its state folder (SQLite, artefacts) and logs hold the total, never one silo's arrays."""
    caplog.set_level("DEBUG")
    state = tmp_path / "coord"
    session, client = run_session(all_up, state, 3, {"fail": ["silo1"]})
    try:
        seeds = session.model().meta["seeds"]
    finally:
        client.close()
    singles = [v for cid, seed in seeds.items()
               for v in plain_sum(silo_root, {cid: seed}).values()]
    needles = {f"{float(x):.6g}" for arr in singles for x in np.ravel(arr)[:20]}
    needles = {n for n in needles if len(n.replace("-", "").replace(".", "")) >= 5}
    blobs: list[bytes] = [p.read_bytes() for p in state.rglob("*") if p.is_file()]
    with sqlite3.connect(next(state.rglob("*.db"))) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            blobs.append(json.dumps(db.execute(f"SELECT * FROM {table}").fetchall(),
                                    default=repr).encode())
    blobs.append(caplog.text.encode())
    raw = [v.astype(np.float64).tobytes() for arr in singles for v in [np.ravel(arr)[:8]]]
    raw += [v.astype(np.float32).tobytes() for arr in singles for v in [np.ravel(arr)[:8]]]
    for blob in blobs:
        assert not any(r in blob for r in raw)  # no individual array, binary
        text = blob.decode("utf-8", "replace")
        assert not any(n in text for n in needles)  # nor printed
