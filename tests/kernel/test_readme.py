"""Every code block of README.md runs, as written, so the snippets cannot drift from the code.

The two set-up blocks (``pip install …``) are what CI itself runs, so they are left out here. The
rest tell one story: two custodians start runners on this machine (shell blocks, run line by line
with ``$HOME`` in a temporary folder holding their exports), then a model builder joins them and
trains, explores and computes statistics (Python blocks, run in order as one notebook in a real
kernel). The only change made to the text: the runners' ports 8765/8766 become free ports.
Blocks fenced ``sh`` or ``py`` are examples outside that story (they name request ids or users
only a running system prints); the calls they show are tested in ``tests/security`` and
``tests/kernel/test_access_requests.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient
from nbhelpers import ROOT, text

from jupyter_fed.demo.data import write_silos, write_vertical

BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
PORTS = ("8765", "8766")


def blocks(kind: str) -> list[str]:
    found = [body for lang, body in BLOCK.findall((ROOT / "README.md").read_text()) if lang == kind]
    return [b for b in found if "pip install" not in b]


def commands(block: str) -> Iterator[str]:
    """Logical lines of a shell block: continuations joined, comment-only lines dropped."""
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#\s.*$", "", line)  # a trailing comment (none of ours quote a '#')
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    """A custodian's machine: each hospital's exports, and nothing else, in a fresh $HOME."""
    data = tmp_path / "generated"
    write_silos(data, rows=1500, clients=2, test_rows=600)
    linked = write_vertical(data / "vertical", rows=1500, parties=2, overlap=0.9, test_rows=600)
    for i, site in enumerate("ab"):
        (tmp_path / "exports" / site).mkdir(parents=True)
        shutil.copy(data / f"train_silo{i}.parquet", tmp_path / "exports" / site / "train.parquet")
        shutil.copy(data / "test.parquet", tmp_path / "exports" / site / "test.parquet")
        for role, name in (("train", "patients"), ("test", "patients-test")):
            table = pq.read_table(linked[f"party{i}"][role])
            if site == "b":  # hospital-b writes its ids in lower case
                table = table.set_column(0, "patient_id", pc.utf8_lower(table.column(0)))
            pq.write_table(table, tmp_path / "exports" / site / f"{name}.parquet")
    yield tmp_path


def test_every_readme_block_runs(home: Path, kernel_name: str) -> None:
    ports = {p: str(_free_port()) for p in PORTS}
    env = {**os.environ, "HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
           "JUPYTER_FED_RUNNER_HOME": str(home / ".runner-default")}
    background: list[subprocess.Popen[bytes]] = []
    try:
        for block in blocks("bash"):
            for line in commands(block):
                for old, new in ports.items():
                    line = line.replace(old, new)
                if line.rstrip().endswith("&"):
                    background.append(_serve(line.rstrip().rstrip("&"), env, home,
                                             next(p for p in ports.values() if p in line)))
                    continue
                out = subprocess.run(["bash", "-c", line], cwd=home, env=env, capture_output=True,
                                     text=True, timeout=120)
                assert out.returncode == 0, f"README line failed: {line}\n{out.stderr}"
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(b) for b in blocks("python")]
        kernel_env = {**env, "JUPYTER_FED_STATE_DIR": str(home / "coordinator"),
                      "JUPYTER_FED_INVITE_PASSWORD": "correct-horse", "MPLBACKEND": "Agg"}
        # each %fed join reads the password of its own invitation: swap it between the two joins
        for cell in nb.cells:
            if "invitation_b" in cell.source:
                cell.source = ("import os; os.environ['JUPYTER_FED_INVITE_PASSWORD'] = "
                               "'battery-staple'\n" + cell.source)
        NotebookClient(nb, kernel_name=kernel_name, timeout=240,
                       resources={"metadata": {"path": str(home)}}).execute(env=kernel_env)
    finally:
        for proc in background:
            proc.send_signal(signal.SIGINT)
        for proc in background:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    outputs = "\n".join(text(c) for c in nb.cells)
    assert "hospital-a" in outputs and "hospital-b" in outputs
    assert "session" in outputs and "completed 5 round(s)" in outputs
    # 90% of 1,500 patients (and of 600 test patients) in common, linked by both cells
    assert "linked 1,350 train, 540 test records across 2 parties" in outputs
    assert "1350" in outputs


def _serve(line: str, env: dict[str, str], home: Path, port: str) -> subprocess.Popen[bytes]:
    """Start a ``runner serve`` line in the background and wait until it listens."""
    log = open(home / f"serve-{port}.log", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=home, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "listening on" not in (home / f"serve-{port}.log").read_text():
        assert proc.poll() is None, (home / f"serve-{port}.log").read_text()
        assert time.monotonic() < deadline, f"runner on port {port} did not start"
        time.sleep(0.05)
    return proc
