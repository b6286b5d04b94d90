"""A real session through the REST API and the event stream, against two runner processes."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from conftest import API, sse_frames
from helpers import DATA_CONFIG, model_config

from jupyter_fed.packages import get_package
from jupyter_fed.wire import decode

TASKS = [{"runner": None, "client_name": None, "datasets": {"train": f"train_silo{i}", "test": "test"}}
         for i in range(2)]


@pytest.fixture()
def fed_runners(federation: Any) -> list[dict[str, str]]:
    """The server connects both runners at start, from ``JupyterFedApp.runners``."""
    return federation.runners


async def _create(api: Any, rounds: int) -> str:
    status, created = await api("POST", "sessions", {
        "name": "rest", "package_name": "iai_ffnet", "min_num_clients": 2, "num_rounds": rounds,
        "model_config": model_config(), "data_config": DATA_CONFIG})
    assert status == 201 and created["status"] == "created"
    return created["id"]


async def _wait(api: Any, sid: str) -> dict[str, Any]:
    for _ in range(12):
        status, info = await api("GET", f"sessions/{sid}/wait", params={"timeout": "10"})
        assert status == 200
        if info["status"] not in ("created", "pending", "running"):
            return info
    raise AssertionError(f"session {sid} did not end: {info}")


async def test_runners_and_catalog_never_show_tokens(api: Any, federation: Any) -> None:
    _, runners = await api("GET", "runners")
    _, catalog = await api("GET", "datasets")

    assert {r["name"]: r["status"] for r in runners} == {"silo0": "ok", "silo1": "ok"}
    assert all(r["datasets"] == 2 and r["latency_ms"] is not None for r in runners)
    assert {(d["runner"], d["name"]) for d in catalog["datasets"]} == {
        ("silo0", "train_silo0"), ("silo0", "test"), ("silo1", "train_silo1"), ("silo1", "test")}
    everything = json.dumps([runners, catalog])
    assert all(spec["token"] not in everything for spec in federation.runners)


async def test_remove_and_add_a_runner(api: Any, federation: Any) -> None:
    spec = federation.runners[1]

    removed, _ = await api("DELETE", "runners/silo1")
    _, after_remove = await api("GET", "runners")
    added, body = await api("POST", "runners", spec)

    assert removed == 204 and [r["name"] for r in after_remove] == ["silo0"]
    assert added == 201 and body["name"] == "silo1" and "token" not in body


async def test_full_session_create_start_join_wait_metrics_model(
        api: Any, jp_fetch: Any, data_root: Path) -> None:
    sid = await _create(api, rounds=2)
    _, started = await api("POST", f"sessions/{sid}/start")
    status, clients = await api("POST", f"sessions/{sid}/join", {"tasks": TASKS})

    info = await _wait(api, sid)

    assert started["status"] == "pending"
    assert status == 200 and {c["client_id"] for c in clients} == {"silo0/train_silo0",
                                                                    "silo1/train_silo1"}
    assert info["status"] == "completed" and info["current_round"] == 2
    _, metrics = await api("GET", f"sessions/{sid}/metrics")
    assert set(metrics) == {"session_id", "federated_metrics", "client_metrics",
                            "latest_global_model_federated_loss"}
    assert len(metrics["federated_metrics"]) == len(metrics["client_metrics"]) == 3
    assert set(metrics["federated_metrics"][-1]) == {"loss", "accuracy", "roc_auc"}
    assert set(metrics["client_metrics"][-1]) == {"silo0/train_silo0", "silo1/train_silo1"}
    _, rounds = await api("GET", f"sessions/{sid}/rounds")
    assert [r["round"] for r in rounds][:2] == [0, 1] or len(rounds) >= 2
    _, logs = await api("GET", f"sessions/{sid}/logs")
    _, newer = await api("GET", f"sessions/{sid}/logs", params={"after": str(logs[-1]["id"])})
    assert any("joined" in row["message"] for row in logs) and newer == []

    resp = await jp_fetch(*API.split("/"), "sessions", sid, "model")
    meta = json.loads(resp.headers["X-Fed-Artefact-Meta"])
    _, meta_route = await api("GET", f"sessions/{sid}/model/meta")
    model = get_package(meta["package"]).load_model()(decode(resp.body), meta)
    test = pq.read_table(data_root / "test.parquet").to_pandas()

    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert meta == meta_route and meta["session_id"] == sid
    assert int(resp.headers["X-Fed-Artefact-Round"]) == meta["round"]
    assert model.predict(test).shape == (len(test), 2)


async def test_event_stream_delivers_the_sessions_rounds(api: Any, server_url: str,
                                                         server_token: str) -> None:
    sid = await _create(api, rounds=2)
    other = await _create(api, rounds=1)  # its events must not reach a stream filtered on `sid`
    events: list[tuple[str, dict[str, Any]]] = []

    async with httpx.AsyncClient(timeout=60) as http, http.stream(
            "GET", f"{server_url}{API}/events", params={"session": sid},
            headers={"Authorization": f"token {server_token}"}) as resp, \
            aclosing(sse_frames(resp.aiter_lines())) as frames:
        events.append(await anext(frames))  # subscribed: nothing from now on is missed
        await api("POST", f"sessions/{other}/start")
        await api("POST", f"sessions/{sid}/start")
        await api("POST", f"sessions/{sid}/join", {"tasks": TASKS})
        async with asyncio.timeout(60):
            async for kind, data in frames:
                events.append((kind, data))
                if kind == "status" and data["status"] in ("completed", "failed"):
                    break

    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert events[0] == ("ready", {"session_id": sid})
    rounds = [data for kind, data in events if kind == "round"]
    assert [r["round"] for r in rounds][:2] == [1, 2]
    assert all(set(r["federated_metrics"]) == {"loss", "accuracy", "roc_auc"} for r in rounds)
    assert ("status", {"type": "status", "session_id": sid, "status": "completed"}) in events
    assert {data.get("session_id") for _, data in events} == {sid}


async def test_event_stream_ends_when_the_server_stops(fed_app: Any, server_url: str,
                                                       server_token: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http, http.stream(
            "GET", f"{server_url}{API}/events",
            headers={"Authorization": f"token {server_token}"}) as resp, \
            aclosing(sse_frames(resp.aiter_lines())) as frames:
        first = await anext(frames)

        await fed_app.stop_extension()
        rest = [frame async for frame in frames]

    assert first == ("ready", {"session_id": None})
    assert rest == []


async def test_packages_lists_what_a_cell_and_the_sidebar_need(api) -> None:
    status, packages = await api("GET", "packages")

    by_name = {p["name"]: p for p in packages}
    assert status == 200
    assert by_name["ffnet"]["rounds"] is True and by_name["ffnet"]["roles"] == ["train", "test"]
    assert by_name["eda"]["rounds"] is False and by_name["eda"]["roles"] == ["data"]
    assert "iai_ffnet" in by_name["ffnet"]["aliases"] and by_name["ffnet"]["example"]
