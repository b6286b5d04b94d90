"""The custodian's commands and the demo, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jupyter_fed.cli", *args], capture_output=True,
                          text=True, check=check, timeout=300)


def test_runner_init_register_and_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(pa.table({"a": list(range(50)), "b": [0.5] * 50}), data / "t.parquet")
    home = str(tmp_path / "home")

    init = _cli("runner", "init", "--home", home, "--name", "lab", "--data-root", str(data))
    reg = _cli("runner", "register", "--home", home, "t", str(data / "t.parquet"), "--tag", "x")
    listed = json.loads(_cli("runner", "datasets", "--home", home, "--json").stdout)
    again = _cli("runner", "init", "--home", home, "--name", "lab", "--data-root", str(data),
                 check=False)

    token = init.stdout.strip().splitlines()[-1]
    assert token.startswith("jfr_")
    assert token not in (Path(home) / "runner.db").read_bytes().decode("latin-1")  # only a hash
    assert "50 rows" in reg.stdout
    assert [(d["name"], d["num_rows"], d["tags"]) for d in listed] == [("t", 50, ["x"])]
    assert again.returncode == 2 and "already exists" in again.stderr


def test_register_refusal_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bad.csv").write_text("a,name\n1,x\n2,y\n")
    home = str(tmp_path / "home")
    _cli("runner", "init", "--home", home, "--name", "lab", "--data-root", str(data))

    out = _cli("runner", "register", "--home", home, "bad", str(data / "bad.csv"), check=False)

    assert out.returncode == 2
    assert "name: type string is not numeric" in out.stderr
    assert "Traceback" not in out.stderr


def test_demo_trains_compares_and_saves_a_plot(tmp_path: Path) -> None:
    out = _cli("demo", "--rounds", "2", "--rows", "1500", "--out", str(tmp_path / "demo"))

    assert "federated" in out.stdout and "centralized" in out.stdout
    assert (tmp_path / "demo" / "demo_metrics.png").stat().st_size > 10_000
    assert not list((tmp_path / "demo").glob("runners-*"))  # runner homes cleaned up
