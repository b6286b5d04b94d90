"""Finding 2 of issue 12: a model builder could exhaust a runner's memory and workers.

Red-team figures: ``hidden_layer_sizes: [25000, 25000]`` in a 1 KB request added 2.4 GB to the
runner, never released; two 1000-epoch steps from one user kept another user's step queued for
over 30 s; no step had a time limit. Steps now run in worker processes that are killed at their
limits, a package's estimate refuses an oversized model before it is built, and the queue is
fair between principals.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import make_token

from jupyter_fed.demo.federation import LocalFederation, RunnerProcess

HERE = Path(__file__).parent
MiB = 2**20


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[RunnerProcess]:
    """A runner with the ``hostile`` test package, small step limits and two workers."""
    env = {"JUPYTER_FED_PACKAGES": "jf_hostile",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    silos = {"arena": {"train": data_root / "train_silo0.parquet"}}
    with LocalFederation(tmp_path_factory.mktemp("arena"), silos, data_root, env={"arena": env},
                         warmup=False, max_workers=2, warm_workers=1, step_memory_mb=300,
                         cancel_grace=1.0) as fed:
        yield fed.processes["arena"]


def _submit(proc: RunnerProcess, token: str, task_id: str, step: str, params: dict[str, Any],
            package: str = "hostile", datasets: dict[str, str] | None = None) -> Any:
    spec = {"task_id": task_id, "session_id": "limits", "round": 1, "package": package,
            "step": step, "datasets": datasets or {"data": "train"}, "params": params}
    with proc.http(token, timeout=30) as http:
        return http.post("/v1/tasks", files={"spec": (None, json.dumps(spec))})


def _status(proc: RunnerProcess, token: str, task_id: str, wait: float = 0) -> dict[str, Any]:
    with proc.http(token, timeout=wait + 30) as http:
        return http.get(f"/v1/tasks/{task_id}", params={"wait": wait}).json()


def _until_done(proc: RunnerProcess, token: str, task_id: str, limit: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        st = _status(proc, token, task_id, wait=min(5.0, max(deadline - time.monotonic(), 0)))
        if st["state"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return st


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (workers, fork server), in MiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total / MiB


def test_a_1kb_request_for_a_huge_model_is_refused_before_it_is_built(vault, admin) -> None:
    # Prepare: the red team's request, on a runner with the default limits
    model = {"model": {"params": {"input_size": 15, "hidden_layer_sizes": [25000, 25000],
                                  "output_size": 2}}}
    params = {"model_config": model, "data_config": {"predictors": [f"x{i}" for i in range(15)],
                                                     "target": "y"}}
    assert len(json.dumps(params)) < 1024
    before = _tree_rss_mib(vault.pid)

    # Execute
    t0 = time.monotonic()
    resp = _submit(vault, vault.token, "huge-model", "fit", params, package="ffnet",
                   datasets={"train": "train"})
    seconds = time.monotonic() - t0

    # Assert: refused up front, naming the limit, and nothing was allocated
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["code"] == "step_limit_exceeded" and "MiB" in body["message"]
    assert seconds < 2.0
    assert _tree_rss_mib(vault.pid) - before < 50
    with vault.http() as http:
        assert http.get("/v1/tasks/huge-model").status_code == 404  # never recorded


def test_a_runaway_step_is_killed_at_its_memory_limit_and_its_memory_returned(arena) -> None:
    # Prepare
    _status_ok = _submit(arena, arena.token, "warm-up", "quick", {})
    assert _status_ok.status_code == 202
    assert _until_done(arena, arena.token, "warm-up", 60)["state"] == "succeeded"
    before = _tree_rss_mib(arena.pid)

    # Execute: a step that allocates 2 GB, on a runner that allows a step 300 MiB
    resp = _submit(arena, arena.token, "hog", "hog", {"max_mb": 2000})
    assert resp.status_code == 202, resp.text
    st = _until_done(arena, arena.token, "hog", 60)

    # Assert: stopped at its limit with a clear error, its memory back, the runner still works
    assert st["state"] == "failed", st
    assert st["error"]["code"] == "step_limit_exceeded" and "300 MiB" in st["error"]["message"]
    time.sleep(1.0)
    assert _tree_rss_mib(arena.pid) - before < 100
    assert _submit(arena, arena.token, "after-hog", "quick", {}).status_code == 202
    assert _until_done(arena, arena.token, "after-hog", 30)["state"] == "succeeded"


def test_a_step_over_its_datasets_time_limit_is_killed(arena) -> None:
    # Prepare: the dataset's policy allows steps 2 s (the runner's own default is an hour)
    with arena.http() as http:
        policy = http.get("/v1/datasets/train/policy").json()
        assert http.put("/v1/datasets/train/policy",
                        json={**policy, "max_step_seconds": 2}).status_code == 200
    try:
        # Execute: a step that would spin for a minute, never reporting progress
        t0 = time.monotonic()
        assert _submit(arena, arena.token, "spin", "spin", {"seconds": 60}).status_code == 202
        st = _until_done(arena, arena.token, "spin", 30)

        # Assert
        assert st["state"] == "failed" and st["error"]["code"] == "step_limit_exceeded", st
        assert "2 s" in st["error"]["message"]
        assert time.monotonic() - t0 < 10
    finally:
        with arena.http() as http:
            http.put("/v1/datasets/train/policy", json=policy)


def test_cancel_stops_a_step_that_ignores_it(arena) -> None:
    assert _submit(arena, arena.token, "deaf", "spin", {"seconds": 60}).status_code == 202
    deadline = time.monotonic() + 30
    while _status(arena, arena.token, "deaf")["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    t0 = time.monotonic()
    with arena.http() as http:
        http.post("/v1/tasks/deaf/cancel")
    st = _until_done(arena, arena.token, "deaf", 20)

    assert st["state"] == "cancelled", st
    assert time.monotonic() - t0 < 6  # the grace is 1 s, then the worker is killed
    assert _submit(arena, arena.token, "after-deaf", "quick", {}).status_code == 202
    assert _until_done(arena, arena.token, "after-deaf", 30)["state"] == "succeeded"


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def test_another_principals_short_step_starts_while_one_principals_long_steps_run(arena) -> None:
    # Prepare: two model builders on a runner with two workers
    with arena.http() as admin:
        greedy = make_token(admin, "greedy", "model_builder", None)
        patient = make_token(admin, "patient", "model_builder", None)
    for i in range(2):
        resp = _submit(arena, greedy, f"long-{i}", "nap", {"seconds": 20})
        assert resp.status_code == 202, resp.text
    time.sleep(0.5)

    # Execute: the other principal's short step
    assert _submit(arena, patient, "short", "quick", {}).status_code == 202
    st = _until_done(arena, patient, "short", 30)

    # Assert: it started within a bounded time, while the long steps still ran
    assert st["state"] == "succeeded", st
    waited = _seconds(st["submitted_at"], st["started_at"])
    assert waited < 5.0, f"the short step waited {waited:.1f} s"
    assert {_status(arena, greedy, f"long-{i}")["state"] for i in range(2)} <= \
        {"running", "queued"}
    with arena.http(greedy) as http:
        for i in range(2):
            http.post(f"/v1/tasks/long-{i}/cancel")


def test_one_principal_cannot_queue_without_bound(arena) -> None:
    with arena.http() as admin:
        flood = make_token(admin, "flood", "model_builder", None)
    codes = [_submit(arena, flood, f"flood-{i}", "nap", {"seconds": 30}).status_code
             for i in range(70)]
    with arena.http(flood) as http:
        for i in range(70):
            http.post(f"/v1/tasks/flood-{i}/cancel")
    assert codes.count(202) <= 65 and 429 in codes
