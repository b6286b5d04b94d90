"""What a custodian declares at registration: public bounds (``--bounds``, ``--bounds-file``)
and views (``--view``), from the command line as a custodian runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jupyter_fed.cli", *args], capture_output=True,
                          text=True, check=check, timeout=300)


def test_bounds_and_views_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    pd.DataFrame({"age": rng.integers(0, 100, 300), "los": rng.gamma(2, 3, 300)}).to_parquet(
        data / "t.parquet", index=False)
    (data / "bounds.json").write_text(json.dumps({"los": [0, 365]}))
    home = str(tmp_path / "home")
    _cli("runner", "init", "--home", home, "--name", "lab", "--data-root", str(data))

    _cli("runner", "register", "--home", home, "t", str(data / "t.parquet"), "--bounds",
         "age=0:120", "--bounds-file", str(data / "bounds.json"))
    _cli("runner", "register", "--home", home, "adults", str(data / "t.parquet"), "--view",
         "age >= 18", "--exact-only")
    bad = _cli("runner", "register", "--home", home, "oops", str(data / "t.parquet"),
               "--bounds", "age=120", check=False)
    listed = {d["name"]: d for d in json.loads(_cli("runner", "datasets", "--home", home,
                                                    "--json").stdout)}
    policy = json.loads(_cli("runner", "policy", "--home", home, "adults").stdout)

    assert {c["name"]: c["bounds"] for c in listed["t"]["columns"]} == {"age": [0.0, 120.0],
                                                                       "los": [0.0, 365.0]}
    adults = pd.read_parquet(data / "t.parquet").query("age >= 18")
    assert listed["adults"]["num_rows"] == len(adults) and listed["adults"]["view"] == "age >= 18"
    assert listed["adults"]["budget_group"] == listed["t"]["budget_group"]  # one file, one budget
    assert policy["exact_only"] is True
    assert bad.returncode != 0 and "expected COLUMN=LOW:HIGH" in bad.stderr


def test_bounds_on_unknown_columns_and_views_on_unknown_columns_are_refused(tmp_path: Path
                                                                           ) -> None:
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"a": range(50)}).to_parquet(data / "t.parquet", index=False)
    home = str(tmp_path / "home")
    _cli("runner", "init", "--home", home, "--name", "lab", "--data-root", str(data))

    bounds = _cli("runner", "register", "--home", home, "t", str(data / "t.parquet"), "--bounds",
                  "b=0:1", check=False)
    view = _cli("runner", "register", "--home", home, "v", str(data / "t.parquet"), "--view",
                "b > 1", check=False)

    assert "bounds: 'b' is not a column of dataset 't'" in bounds.stderr
    assert "view: the file has no column(s) b" in view.stderr
