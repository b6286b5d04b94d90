"""``%%federate eda --mode intersect`` in a real kernel: a linkage cell, then EDA on its rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from nbhelpers import SETUP, last_json, text
from test_federate_analytics import ANALYST

from jupyter_fed.demo.data import write_vertical

CELLS = {
    "setup": SETUP + "\n" + ANALYST,
    "link": "%%federate prl -o linked\n"
            "clients:\n"
            "  p0: {train: silo0/kparty0, id_columns: [patient_id]}\n"
            "  p1: {train: silo1/kparty1, id_columns: [patient_id]}\n",
    "intersect": "%%federate eda --mode intersect --prl {linked.id} -o inter\n"
                 "epsilon: 2.0\n"
                 "pair_epsilon: 2.0\n"
                 "paired_columns: {p0: [x0], p1: [x8]}\n"
                 "clients:\n"
                 "  p0: {data: silo0/kparty0, columns: [x0, x1]}\n"
                 "  p1: {data: silo1/kparty1, columns: [x8, y]}\n",
    "results": "r = inter.results()\n"
               "print(json.dumps({'package': inter.package, 'parties': list(r), 'n': r.n,\n"
               "                  'columns': {p: list(r[p].columns) for p in r},\n"
               "                  'pairs': r.pairs(),\n"
               "                  'corr': r.corr(r['p0']['x0'], r['p1']['x8'])}))",
    "bad_mode": ("%%federate eda --mode sideways --prl {linked.id}\nclients: {}", "raises"),
    "bad_column": ("%%federate eda --mode intersect --prl {linked.id}\n"
                   "paired_columns: {p0: [x9]}\n"
                   "clients:\n"
                   "  p0: {data: silo0/kparty0}\n"
                   "  p1: {data: silo1/kparty1}\n", "raises"),
}


@pytest.fixture(scope="module")
def cells(run_notebook: Any, federation: Any, data_root: Any) -> Iterator[dict[str, Any]]:
    files = write_vertical(data_root / "kernel-vertical", rows=1200, parties=2, overlap=0.9)
    for i, runner in enumerate(("silo0", "silo1")):
        with federation.processes[runner].http() as admin:
            admin.post("/v1/datasets", json={"name": f"kparty{i}",
                                             "path": str(files[f"party{i}"]["train"]),
                                             "id_columns": ["patient_id"]}).raise_for_status()
    try:
        nb = run_notebook(list(CELLS.values()), timeout=180)
        yield dict(zip(CELLS, nb.cells, strict=True))
    finally:  # the federation is the whole run's: other tests count its datasets
        for i, runner in enumerate(("silo0", "silo1")):
            with federation.processes[runner].http() as admin:
                admin.delete(f"/v1/datasets/kparty{i}")


def test_a_cell_explores_the_intersection_of_a_linkage(cells: dict[str, Any]) -> None:
    shown = text(cells["intersect"])
    found = last_json(cells["results"])

    assert "1,080 linked rows" in shown and "corr(p0.x0, p1.x8)" in shown
    assert found["package"] == "eda_intersect" and found["parties"] == ["p0", "p1"]
    assert found["n"] == 1080  # 90% of 1,200
    assert found["columns"] == {"p0": ["x0", "x1"], "p1": ["x8", "y"]}
    assert found["pairs"] == [["p0.x0", "p1.x8"]]
    assert -0.3 < found["corr"] < 0.3  # independent features in the demo data


def test_bad_modes_and_columns_are_refused_by_name(cells: dict[str, Any]) -> None:
    assert "--mode 'sideways' is not a mode of EDA" in text(cells["bad_mode"])
    assert "data_config.paired_columns.p0" in text(cells["bad_column"])
    assert "x9" in text(cells["bad_column"])
