"""``jupyter fed coordinator``: the same extension, launched as a server of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

import jupyter_fed
from jupyter_fed.client._rest import RestBackend


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, token: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"{url}jupyter-fed/api/v1/status", timeout=1,
                         headers={"Authorization": f"token {token}"}).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"headless coordinator did not start:\n{log.read_text()[-2000:]}")


def test_headless_coordinator_serves_only_the_fed_api(tmp_path: Path) -> None:
    port, token, log = _free_port(), "headless-token", tmp_path / "server.log"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    env.pop("JPY_PARENT_PID", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_fed.cli", "coordinator", f"--port={port}",
             "--ip=127.0.0.1", "--allow-root", f"--state-dir={tmp_path / 'state'}",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_up(url, token, proc, log)
        client = jupyter_fed.connect(url, token=token)
        sessions, runners = client.sessions(), client.runners()
        client.close()
        terminals = httpx.get(f"{url}api/terminals", headers={"Authorization": f"token {token}"})
    finally:
        proc.terminate()
        proc.wait(20)

    assert isinstance(client._backend, RestBackend)
    assert sessions == [] and runners.empty
    assert terminals.status_code == 404  # no other extension was loaded
    assert (tmp_path / "state" / "coordinator.db").exists()
    assert "jupyter_fed is running without loading other extensions" in log.read_text()
