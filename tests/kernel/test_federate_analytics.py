"""``%%federate eda`` / ``%%federate stats`` and the ``EdaPanel`` in a real kernel."""

from __future__ import annotations

import re
from typing import Any

import pytest
from nbhelpers import SETUP, last_json, mimetypes, stdout, text

# A principal of its own: EDA spends privacy budget per principal and dataset, and the stats
# answers a runner remembers (for its differencing check) are per principal too.
ANALYST = ("import tempfile, uuid\n"
           "user = 'kernel_' + uuid.uuid4().hex[:8]\n"
           "mine = []\n"
           "for r in json.loads(os.environ['JUPYTER_FED_TEST_RUNNERS']):\n"
           "    a = client.auth(r['name'])\n"
           "    a.create_user(user)\n"
           "    for ds in client.datasets().query(f\"runner == '{r['name']}'\")['name']:\n"
           "        a.grant(user, ds)\n"
           "    mine.append({**r, 'token': a.create_token(user)['token']})\n"
           "analyst = jupyter_fed.connect(embedded=True, state_dir=tempfile.mkdtemp(), runners=mine)\n"
           "%load_ext jupyter_fed\n"
           "%fed use analyst")

CELLS = {
    "setup": SETUP + "\n" + ANALYST,
    "eda": "%%federate eda --datasets train_silo0,train_silo1 -o explored\n"
           "epsilon: 1.0\nbins: 10\ncolumns: [x0, x1, y]\n",
    "eda_var": "r = explored.results()\n"
               "print(json.dumps({'type': type(explored).__name__, 'status': explored.status(),\n"
               "                  'datasets': list(r.datasets), 'columns': list(r['train_silo0'].columns)}))",
    "per_dataset": "%%federate iai_eda -o per --no-wait\n"
                   "mechanism: gaussian\n"
                   "data_config:\n  train_silo0: [x2]\n  train_silo1: [x3, y]\n",
    "per_dataset_var": "per.wait(60)\n"
                       "r = per.results()\n"
                       "print(json.dumps({d: list(r[d].columns) for d in r}))",
    "stats": "%%federate stats --datasets train_silo0,train_silo1 -o summary\n"
             "contract: |\n  COUNT(x0) >= 100\n  MEAN(y) > 0.1\n"
             "send_action: block\ncolumns: [x0, x1, y]\nfilter: x0 > -10\n",
    "stats_var": "s = summary.results()\n"
                 "print(json.dumps({'n': s.n, 'peers': s.peers, 'columns': s.columns,\n"
                 "                  'corr': s.lincorr('x0', 'y')}))",
    "bad_option": ("%%federate eda --datasets train_silo0 --rounds 3\nbins: 8", "raises"),
    "bad_key": ("%%federate stats --datasets train_silo0\ncontract: 'COUNT(x0) > 1'\nfiltr: x0 > 0",
                "raises"),
    "bad_value": ("%%federate eda --datasets train_silo0\nepsilon: -1", "raises"),
    "panel": "from jupyter_fed.widgets import EdaPanel\n"
             "import hashlib\n"
             "panel = EdaPanel(explored)\n"
             "def state():\n"
             "    return {'dataset': panel.dataset, 'column': panel.column, 'columns': panel.columns,\n"
             "            'boxes': [panel.dataset_box.value, panel.column_box.value],\n"
             "            'png': hashlib.sha1(panel.image.value).hexdigest(),\n"
             "            'table': panel.table.value}\n"
             "states = [state()]\n"
             "panel.column = 'x1'\n"
             "states.append(state())\n"
             "panel.dataset_box.value = 'combined'      # choosing in the dropdown\n"
             "states.append(state())\n"
             "panel.column_box.value = 'y'\n"
             "states.append(state())\n"
             "panel.dataset = 'train_silo1'\n"
             "states.append(state())\n"
             "errors = []\n"
             "for name, value in (('dataset', 'nope'), ('column', 'x9')):\n"
             "    try:\n"
             "        setattr(panel, name, value)\n"
             "    except Exception as exc:\n"
             "        errors.append(type(exc).__name__)\n"
             "print(json.dumps({'datasets': panel.datasets, 'states': states, 'errors': errors,\n"
             "                  'after': [panel.dataset, panel.column]}))",
}


@pytest.fixture(scope="module")
def cells(run_notebook: Any) -> dict[str, Any]:
    nb = run_notebook(list(CELLS.values()), timeout=180)
    return dict(zip(CELLS, nb.cells, strict=True))


def _html(cell: Any) -> str:
    return "".join(o["data"].get("text/html", "") for o in cell["outputs"] if "data" in o)


def test_federate_eda_shows_the_describe_table_and_the_pooled_histograms(cells: dict[str, Any]
                                                                         ) -> None:
    found = last_json(cells["eda_var"])
    html = _html(cells["eda"])

    assert "error" not in {o["output_type"] for o in cells["eda"]["outputs"]}
    assert "the Session is in 'explored'" in text(cells["eda"])
    assert found == {"type": "Session", "status": "completed",
                     "datasets": ["train_silo0", "train_silo1"], "columns": ["x0", "x1", "y"]}
    assert "EDA results" in html and "<table" in html and "train_silo1" in html and "75%" in html
    assert "image/png" in mimetypes(cells["eda"])


def test_federate_eda_takes_per_dataset_columns_and_returns_at_once(cells: dict[str, Any]) -> None:
    assert "per.wait() waits for it" in text(cells["per_dataset"])
    assert "image/png" not in mimetypes(cells["per_dataset"])
    assert last_json(cells["per_dataset_var"]) == {"train_silo0": ["x2"],
                                                   "train_silo1": ["x3", "y"]}


def test_federate_stats_shows_the_merged_summary_and_correlations(cells: dict[str, Any]) -> None:
    found = last_json(cells["stats_var"])
    html = _html(cells["stats"])

    # the cell's filter makes each silo's answer differentially private: a noisy count
    assert abs(found["n"] - 4000) < 300 and found["columns"] == ["x0", "x1", "y"]
    assert sorted(found["peers"]) == ["silo0/train_silo0", "silo1/train_silo1"]
    assert abs(found["corr"]) < 1
    assert "Statistics" in html and "checked against a contract" in html
    assert "Correlation" in html and html.count("<table") == 2
    assert "correlation:" in text(cells["stats"])  # the text version for consoles


@pytest.mark.parametrize(("cell", "expected"), [
    ("bad_option", "--rounds does not apply to %%federate eda"),
    ("bad_key", "unknown key 'filtr' for %%federate stats"),
    ("bad_value", "model_config.epsilon: Input should be greater than 0"),
])
def test_a_refused_analytics_cell_shows_one_line(cells: dict[str, Any], cell: str,
                                                 expected: str) -> None:
    outputs = cells[cell]["outputs"]
    errors = [o["text"] for o in outputs if o.get("name") == "stderr"]

    assert "error" not in {o["output_type"] for o in outputs}
    assert len(errors) == 1
    message = errors[0].strip()
    assert "\n" not in message and message.startswith("UsageError: ") and expected in message
    assert " — " in message


def test_eda_panel_follows_dataset_and_column(cells: dict[str, Any]) -> None:
    found = last_json(cells["panel"])
    first, by_column, pooled, pooled_y, _ = found["states"]

    assert found["datasets"] == ["train_silo0", "train_silo1", "combined"]
    assert (first["dataset"], first["column"], first["columns"]) == ("train_silo0", "x0",
                                                                     ["x0", "x1", "y"])
    assert [(s["dataset"], s["column"]) for s in found["states"]] == [
        ("train_silo0", "x0"), ("train_silo0", "x1"), ("combined", "x1"), ("combined", "y"),
        ("train_silo1", "y")]
    assert all(s["boxes"] == [s["dataset"], s["column"]] for s in found["states"])
    assert len({s["png"] for s in found["states"]}) == 5  # every change redraws the histogram
    for s in found["states"]:  # the table is the dataset's, its column highlighted
        head = s["table"].split("</thead>")[0]
        assert re.findall(r'<th class="jp-Fed-eda-selected" style="[^"]*">([^<]*)</th>', head) == [
            s["column"]]
    assert first["table"] != by_column["table"] != pooled["table"] != pooled_y["table"]
    assert found["errors"] == ["TraitError", "TraitError"]
    assert found["after"] == ["train_silo1", "y"]
    assert stdout(cells["panel"])  # printed its findings, no error
