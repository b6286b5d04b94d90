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

    assert out.returncode == 1
    assert "column 'name': type string is not numeric" in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def _runner(tmp_path: Path) -> tuple[Path, str]:
    data = tmp_path / "data"
    data.mkdir()
    home = str(tmp_path / "home")
    _cli("runner", "init", "--home", home, "--name", "lab", "--data-root", str(data))
    return data, home


def _one_line(out: subprocess.CompletedProcess[str], code: int) -> str:
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_invalid_dataset_name_is_one_line_and_a_usage_error(tmp_path: Path) -> None:
    data, home = _runner(tmp_path)
    pq.write_table(pa.table({"a": list(range(50))}), data / "t.parquet")

    line = _one_line(_cli("runner", "register", "--home", home, "train-2 x",
                          str(data / "t.parquet"), check=False), 2)

    assert "name 'train-2 x'" in line and "must start with a letter" in line


def test_many_badly_named_columns_state_the_rule_once(tmp_path: Path) -> None:
    data, home = _runner(tmp_path)
    pq.write_table(pa.table({f"col {i}": [1.0] * 50 for i in range(30)}), data / "t.parquet")

    line = _one_line(_cli("runner", "register", "--home", home, "t", str(data / "t.parquet"),
                          check=False), 1)

    assert line.count("must start with a letter") == 1
    assert "'col 0'" in line and "and 22 more" in line and "rename those columns" in line


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    _data, home = _runner(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        line = _one_line(_cli("runner", "serve", "--home", home, "--port", str(port),
                              check=False), 1)

    assert f"127.0.0.1:{port} is already in use" in line and "--port" in line


def test_data_roots_are_managed_by_the_command_the_hint_names(tmp_path: Path) -> None:
    _data, home = _runner(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    pq.write_table(pa.table({"a": list(range(50))}), other / "t.parquet")

    refused = _one_line(_cli("runner", "register", "--home", home, "t", str(other / "t.parquet"),
                             check=False), 2)
    added = _cli("runner", "data-root", "add", str(other), "--home", home)
    registered = _cli("runner", "register", "--home", home, "t", str(other / "t.parquet"))
    listed = _cli("runner", "data-root", "list", "--home", home).stdout.split()
    in_use = _one_line(_cli("runner", "data-root", "remove", str(other), "--home", home,
                            check=False), 2)

    assert "jupyter-fed runner data-root add" in refused
    assert str(other) in added.stdout and "50 rows" in registered.stdout
    assert str(other) in listed
    assert "datasets t lie under" in in_use


def test_demo_trains_compares_and_saves_a_plot(tmp_path: Path) -> None:
    out = _cli("demo", "--rounds", "2", "--rows", "1500", "--out", str(tmp_path / "demo"))

    assert "federated" in out.stdout and "centralized" in out.stdout
    # written to a pipe: one line per round, never a redrawn bar's copies
    assert out.stdout.count("round 1/2 done") == 1 and out.stdout.count("round 2/2 done") == 1
    assert f"metric curves: {tmp_path / 'demo' / 'demo_metrics.png'}" in out.stdout
    assert (tmp_path / "demo" / "demo_metrics.png").stat().st_size > 10_000
    assert not list((tmp_path / "demo").glob("runners-*"))  # runner homes cleaned up
