"""Sessions live in the Jupyter server, not the kernel: they outlive kernels and server crashes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

import jupyter_fed

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
TOKEN = "survival-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``jupyter fed coordinator``: the server extension, alone, in its own process."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port = tmp, _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime"),
               "JUPYTER_CONFIG_DIR": str(self.tmp / "config"),
               "JUPYTER_DATA_DIR": str(self.tmp / "data"), "JUPYTER_FED_PACKAGES": "jf_faults",
               "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
        env.pop("JPY_PARENT_PID", None)
        with (self.tmp / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_fed.cli", "coordinator", f"--port={self.port}",
                 "--ip=127.0.0.1", "--allow-root", f"--state-dir={self.tmp / 'state'}",
                 f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={self.tmp}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.tmp / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}jupyter-fed/api/v1/status", timeout=1,
                             headers={"Authorization": f"token {TOKEN}"}).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("coordinator did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def _kernel(cells: list[str], tmp: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    NotebookClient(nb, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(tmp)}}).execute(env=env)
    return nb


def _out(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                   for o in cell.get("outputs", []))


@pytest.fixture()
def server(tmp_path: Path):
    srv = Server(tmp_path).start()
    yield srv
    srv.kill()


def test_a_session_outlives_its_kernel_and_a_server_crash(server, healthy, faults,
                                                          tmp_path: Path) -> None:
    pytest.importorskip("ipykernel")
    for name in ("silo0", "silo1"):  # slow enough that two kernel starts fit in the session
        faults.set(name, "sleep:2")
    runners = json.dumps([r for r in healthy.runners if r["name"] != "silo2"])
    start = _kernel([
        "%load_ext jupyter_fed",
        f"import json, jupyter_fed\nc = jupyter_fed.connect({server.url!r}, token={TOKEN!r})\n"
        f"for r in json.loads({runners!r}):\n    c.add_runner(**r)\n%fed use c",
        "%%federate faulty_ffnet --datasets train_silo0,train_silo1 --test-datasets test "
        "--rounds 5 --no-wait -o s\ntarget: y\nmodel:\n  params: {hidden_layer_sizes: [8], "
        "output_size: 2}",
        "print(s.id)",
    ], tmp_path)
    sid = _out(start.cells[-1]).strip()

    # The kernel that started it is gone; a new one sees it running.
    seen = _kernel(["%load_ext jupyter_fed",
                    f"import jupyter_fed\nc = jupyter_fed.connect({server.url!r}, token={TOKEN!r})"
                    "\n%fed use c",
                    "%fed sessions"], tmp_path)
    listing = _out(seen.cells[-1])
    assert sid in listing and ("running" in listing or "pending" in listing)

    client = jupyter_fed.connect(server.url, token=TOKEN)
    session = client.session(sid)
    deadline = time.monotonic() + 60
    while session.info()["current_round"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert session.info()["status"] == "running", "the session ended before the crash"
    client.close()

    server.kill()  # mid-session, no cleanup
    server.start()

    client = jupyter_fed.connect(server.url, token=TOKEN)
    try:
        session = client.session(sid)
        assert session.wait(90)
        assert [r["round"] for r in session.rounds()] == [0, 1, 2, 3, 4, 5, 6]
        assert any("resuming after round" in r["message"] for r in session.logs())
    finally:
        client.close()
