"""The SDK over REST: the same Client results as embedded, FedErrors back, finding the server."""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import DATA_CONFIG, model_config

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.client._embedded import EmbeddedBackend
from jupyter_fed.client._rest import RestBackend, _candidates, find_server
from jupyter_fed.errors import AuthError, ConfigError, FedError, NotFoundError
from jupyter_fed.server import handlers


def _train(client: Any, test: Any) -> dict[str, Any]:
    """The whole SDK flow; returns what a notebook user would look at."""
    session = client.create_fl_session(
        name="same", min_num_clients=2, num_rounds=2, package_name="iai_ffnet",
        model_config=model_config(), data_config=DATA_CONFIG).start()
    tb = client.task_builder()
    ctx = (SessionTaskGroup(session).add_task(tb.hfl("train_silo0", "test"))
           .add_task(tb.hfl("train_silo1", "test")).start())
    completed = ctx.wait(120, 0.5)
    metrics = session.metrics().as_dict()
    return {"completed": completed, "status": session.status(), "metrics": metrics,
            "clients": sorted(t.status()["status"] for t in ctx.contexts.values()),
            "prob": session.model().predict(test)[:, 1], "rounds": len(session.rounds()),
            "datasets": client.datasets().drop(columns=["registered_at"]),
            "runners": sorted(client.runners()["name"]), "listed": [s.id for s in client.sessions()],
            "id": session.id}


async def test_client_over_rest_gives_the_same_results_as_embedded(
        server_url: str, server_token: str, federation: Any, client: Any, data_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    test = pq.read_table(data_root / "test.parquet").to_pandas()
    rest = await asyncio.to_thread(jupyter_fed.connect, server_url, token=server_token,
                                   runners=federation.runners)

    try:  # the SDK blocks, so it runs on a thread while this loop serves the REST API
        over_rest = await asyncio.to_thread(_train, rest, test)
        inline = await asyncio.to_thread(rest._backend.artefact_bytes, over_rest["id"])
        monkeypatch.setattr(handlers, "META_HEADER_LIMIT", 0)  # metadata too big for a header
        fetched = await asyncio.to_thread(rest._backend.artefact_bytes, over_rest["id"])
    finally:
        rest.close()
    embedded = _train(client, test)

    assert fetched == inline

    assert isinstance(rest._backend, RestBackend) and isinstance(client._backend, EmbeddedBackend)
    assert over_rest["completed"] is embedded["completed"] is True
    assert over_rest["status"] == embedded["status"] == "completed"
    assert over_rest["clients"] == embedded["clients"] == ["done", "done"]
    assert over_rest["rounds"] == embedded["rounds"]
    assert over_rest["runners"] == embedded["runners"] == ["silo0", "silo1"]
    assert over_rest["listed"] == [over_rest["id"]]
    assert over_rest["datasets"].equals(embedded["datasets"])
    m_rest, m_emb = over_rest["metrics"], embedded["metrics"]
    assert m_rest.keys() == m_emb.keys()
    assert [set(c) for c in m_rest["client_metrics"]] == [set(c) for c in m_emb["client_metrics"]]
    for a, b in zip(m_rest["federated_metrics"], m_emb["federated_metrics"], strict=True):
        assert a.keys() == b.keys()
        assert all(math.isclose(a[k], b[k], rel_tol=1e-5, abs_tol=1e-9) for k in a)
    np.testing.assert_allclose(over_rest["prob"], embedded["prob"], rtol=1e-5, atol=1e-7)


async def test_runner_admin_and_invitations_work_over_rest(server_url: str, server_token: str,
                                                          federation: Any) -> None:
    rest = await asyncio.to_thread(jupyter_fed.connect, server_url, token=server_token,
                                   runners=federation.runners)

    def invite_and_join() -> tuple[Any, ...]:
        admin = rest.auth("silo0")
        admin.create_user("rest_ana")
        blob = admin.invite("rest_ana", "pw-123456", url=federation.runners[0]["url"])["blob"]
        joined = rest.join(blob, "pw-123456", name="hospital")
        try:
            rest.join(blob, "pw-123456", name="again")
        except FedError as exc:
            again: Any = exc
        return admin.users(), joined, sorted(rest.runners()["name"]), again

    try:
        users, joined, names, again = await asyncio.to_thread(invite_and_join)
    finally:
        rest.close()

    assert "rest_ana" in [u["name"] for u in users]
    assert joined["name"] == "hospital" and "token" not in joined
    assert names == ["hospital", "silo0", "silo1"]
    assert isinstance(again, FedError)  # an invitation works once


async def test_errors_come_back_as_the_same_fed_errors(server_url: str, server_token: str) -> None:
    rest = await asyncio.to_thread(jupyter_fed.connect, server_url, token=server_token)

    def attempts() -> list[BaseException]:
        caught = []
        for call in (lambda: rest.session("nope"),
                     lambda: rest.create_fl_session("bad", model_config=model_config(batch_size=0),
                                                    data_config=DATA_CONFIG)):
            try:
                call()
            except Exception as exc:
                caught.append(exc)
        return caught

    try:
        missing, invalid = await asyncio.to_thread(attempts)
    finally:
        rest.close()

    assert isinstance(missing, NotFoundError) and "nope" in missing.message
    assert isinstance(invalid, ConfigError)
    assert invalid.details == [{"field": "model_config.batch_size",
                                "error": "Input should be greater than or equal to 1"}]


async def test_connect_refuses_a_wrong_token_and_a_server_without_the_extension(
        server_url: str, server_token: str) -> None:
    with pytest.raises(AuthError, match="token"):
        await asyncio.to_thread(jupyter_fed.connect, server_url, token="wrong")
    with pytest.raises(NotFoundError, match="extension is not enabled"):
        await asyncio.to_thread(jupyter_fed.connect, server_url + "elsewhere/", token=server_token)


async def test_connect_finds_the_server_that_started_the_kernel(
        server_url: str, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPY_PARENT_PID", str(os.getpid()))  # as jupyter_client sets it
    monkeypatch.chdir(jp_root_dir)

    client = await asyncio.to_thread(jupyter_fed.connect)
    try:
        sessions = await asyncio.to_thread(client.sessions)
    finally:
        client.close()

    assert isinstance(client._backend, RestBackend)
    assert client._backend.url == server_url
    assert sessions == []


def test_outside_a_kernel_there_is_no_server_to_find(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)

    assert find_server() is None
    with pytest.raises(ConfigError, match="no Jupyter server"):
        jupyter_fed.connect(embedded=False)


def test_contradictory_arguments_are_refused(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JUPYTER_FED_URL", "JPY_PARENT_PID", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="url="):
        jupyter_fed.connect("http://localhost:8888/", embedded=True)
    with pytest.raises(ConfigError, match="url="):
        jupyter_fed.connect("http://localhost:8888/", state_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs a configured coordinator"):
        jupyter_fed.connect(token="t")  # a token alone: no coordinator is configured here


async def test_a_bare_token_connects_to_the_configured_coordinator(
        server_url: str, server_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_FED_URL", server_url)

    client = await asyncio.to_thread(jupyter_fed.connect, server_token)  # connect("token")
    try:
        sessions = await asyncio.to_thread(client.sessions)
    finally:
        client.close()
    with pytest.raises(AuthError):
        await asyncio.to_thread(jupyter_fed.connect, "not-the-token")

    assert isinstance(client._backend, RestBackend)
    assert client._backend.url == server_url.rstrip("/") + "/"
    assert sessions == []


def test_the_parent_server_comes_first_then_the_innermost_root(tmp_path: Path) -> None:
    outer, inner = tmp_path, tmp_path / "project"
    servers = [{"pid": 1, "root_dir": str(outer)}, {"pid": 2, "root_dir": str(inner)},
               {"pid": 3, "root_dir": str(tmp_path / "unrelated")}, {"pid": 4, "root_dir": "/elsewhere"}]
    cwd = inner / "notebooks"

    assert [s["pid"] for s in _candidates(servers, cwd, parent_pid=4)] == [4, 2, 1]
    assert [s["pid"] for s in _candidates(servers, cwd, parent_pid=None)] == [2, 1]


async def test_analytics_results_over_rest(server_url: str, server_token: str,
                                           federation: Any) -> None:
    rest = await asyncio.to_thread(jupyter_fed.connect, server_url, token=server_token,
                                   runners=federation.runners)

    def run_eda() -> Any:
        from jupyter_fed import SessionTaskGroup

        session = rest.create_eda_session("rest eda", data_config={"test": ["x0", "y"]},
                                          epsilon=2.0).start()
        SessionTaskGroup(session).add_task(rest.task_builder().eda("test", runner="silo1")) \
            .start().wait(60)
        return session.results()

    try:
        results = await asyncio.to_thread(run_eda)
    finally:
        rest.close()

    assert list(results) == ["test"]
    assert results["test"]["y"].uniques() == [0.0, 1.0]
    assert abs(results["test"]["x0"].count() - 1000) < 100
