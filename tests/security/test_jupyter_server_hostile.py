"""The Jupyter server that hosts the coordinator, under hostile requests from an authenticated user.

Finding 4 of issue 12: thirty concurrent wrong-password joins raised the server's ``/status``
latency from 24 ms to 1,687 ms, because the invitation's scrypt ran on the event loop. And the
schemathesis run that keeps the runner at zero 5xx now covers the server's REST routes too.
Each test talks to a real headless server (``jupyter fed coordinator``) in its own process.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jupyter_fed.wire.invitation import seal

TOKEN = "hostile-test-token"
API = "jupyter-fed/api/v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    env.pop("JPY_PARENT_PID", None)
    with (tmp_path / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_fed.cli", "coordinator", f"--port={port}",
             "--ip=127.0.0.1", "--allow-root", f"--state-dir={tmp_path / 'state'}",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}{API}/status", headers=_auth(), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _auth() -> dict[str, str]:
    return {"Authorization": f"token {TOKEN}"}


def _latencies(url: str, stop: threading.Event | None, count: int = 20) -> list[float]:
    out: list[float] = []
    with httpx.Client(headers=_auth(), timeout=30) as http:
        while (stop is None and len(out) < count) or (stop is not None and not stop.is_set()):
            t0 = time.perf_counter()
            assert http.get(f"{url}api/status").status_code == 200
            out.append(time.perf_counter() - t0)
            time.sleep(0.01)
    return out


def test_wrong_password_joins_do_not_stall_the_server(server: str) -> None:
    # Prepare: a well-formed invitation, and the server's latency at rest
    blob = seal({"v": 1, "runner": "r", "url": "https://127.0.0.1:1", "token": "jfr_x",
                 "invitation": "inv_x", "fingerprint": "sha256:" + "0" * 64}, "the right one")
    rest = _latencies(server, None)

    # Execute: 30 concurrent joins with a wrong password, while /api/status is measured (the
    # clients are made first: making 30 at once would stall this process, not the server)
    clients = [httpx.Client(headers=_auth(), timeout=60) for _ in range(30)]
    stop, busy, statuses = threading.Event(), [], []
    go = threading.Barrier(30)

    def join(http: httpx.Client) -> None:
        go.wait()
        statuses.append(http.post(f"{server}{API}/invitations",
                                  json={"blob": blob, "password": "a wrong guess"}).status_code)

    sampler = threading.Thread(target=lambda: busy.extend(_latencies(server, stop)))
    sampler.start()
    joins = [threading.Thread(target=join, args=(c,)) for c in clients]
    for t in joins:
        t.start()
    for t in joins:
        t.join(90)
    time.sleep(0.3)
    stop.set()
    sampler.join(30)
    for c in clients:
        c.close()

    # Assert: refused (401 wrong password, 429 too many tries), never 5xx; latency unaffected
    assert sorted(set(statuses)) <= [401, 429] and len(statuses) == 30, statuses
    assert statuses.count(429) >= 15  # ten tries a minute per client
    p90 = sorted(busy)[int(0.9 * (len(busy) - 1))]
    assert len(busy) >= 20, "the server answered too few requests meanwhile"
    assert p90 < max(0.1, 10 * statistics.median(rest)), f"p90 {p90 * 1000:.0f} ms"
    assert max(busy) < 0.5, f"/api/status took {max(busy) * 1000:.0f} ms (before: 1,687)"


def test_no_rest_route_answers_with_a_server_error(server: str) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    document = httpx.get(f"{server}{API}/openapi.json", headers=_auth(), timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=server.rstrip("/") + document["servers"][0]["url"])
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.path != "/events"]  # a stream: never ends

    def fuzz(op: object) -> None:
        @given(case=op.as_strategy())
        @settings(max_examples=12, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: object) -> None:
            if case.query and "timeout" in case.query:  # a long poll may wait up to max_wait
                case.query["timeout"] = min(float(case.query["timeout"] or 0), 0.5)
            resp = case.call(headers=_auth(), timeout=60)
            # 503/504 with runner_unavailable/runner_timeout is the documented answer when a
            # fuzzed runner address does not answer; anything else 5xx is a bug.
            documented = resp.status_code in (503, 504) and \
                resp.json().get("code") in ("runner_unavailable", "runner_timeout")
            if resp.status_code >= 500 and not documented:
                failures.append(f"{op.method.upper()} {op.path} -> {resp.status_code}: "
                                f"{resp.text[:200]}")

        call()

    for op in operations:
        fuzz(op)

    assert len(operations) >= 20
    assert failures == []


def test_the_openapi_document_covers_every_route() -> None:
    import re

    from jupyter_fed.server.openapi import OPERATIONS
    from jupyter_fed.server.routes import ROUTES

    documented = [(m, re.sub(r"\{[^}]+\}", "x1", p)) for m, p, *_ in OPERATIONS]
    for pattern, handler in ROUTES:
        if pattern == r"/.*":
            continue
        methods = [m for m in ("get", "post", "put", "patch", "delete")
                   if m in vars(handler)]
        for method in methods:
            assert any(m == method and re.fullmatch(pattern, p) for m, p in documented), \
                f"{method.upper()} {pattern} is not in openapi.OPERATIONS"
