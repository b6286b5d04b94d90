"""``%fed`` and ``%%federate`` in a real kernel: what a notebook user sees in the cell outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nbhelpers import ROOT, SETUP, last_json, mimetypes, stdout, text

FEDERATE = ("%%federate ffnet --datasets train_silo0,train_silo1 --test-datasets test --rounds 2 "
            "-o trained\n"
            "target: y\n"
            "model:\n"
            "  params: {hidden_layer_sizes: [8], output_size: 2}\n"
            "optimizer: {name: SGD, params: {learning_rate: 0.1, momentum: 0.9}}\n"
            "batch_size: 64\n")

CELLS = {
    "load": "%load_ext jupyter_fed\nimport json, sys\n"
            "print(json.dumps(sorted(m for m in ('torch', 'sklearn', 'matplotlib') if m in sys.modules)))",
    "setup": SETUP + "\n%fed use client",
    "datasets": "%fed datasets",
    "runners": "%fed runners",
    "bad_field": ("%%federate ffnet --datasets train_silo0,train_silo1 --test-datasets test\n"
                  "target: y\nmodel: {params: {output_size: 2}}\noptimizer: {name: Adamm}", "raises"),
    "bad_yaml": ("%%federate ffnet --datasets train_silo0\ntarget: y\n  model: [\n", "raises"),
    "bad_dataset": ("%%federate ffnet --datasets train_silo9\ntarget: y\n", "raises"),
    "federate": FEDERATE,
    "result": "m = trained.metrics().as_dict()\n"
              "print(json.dumps({'status': trained.status(), 'n': len(m['federated_metrics']),\n"
              "                  'auc': m['federated_metrics'][-1]['roc_auc']}))",
    "sessions": "%fed sessions",
    "status": "%fed status",
    "help": "ip = get_ipython()\n"
            "print(ip.object_inspect_mime('%fed')['text/plain'])\n"
            "print(ip.object_inspect_mime('%%federate')['text/plain'])",
    "failing": ("%%federate ffnet --datasets train_silo0,train_silo1 --rounds 1 -o broken\n"
                "target: y\npredictors: [x0, x1]\nmodel: {params: {output_size: 2}}\n"
                "normalize: false\noptimizer: {name: SGD, params: {learning_rate: 1.0e+30}}",
                "raises"),
    "failures": "from jupyter_fed.widgets import LiveMetrics\n"
                "panel = LiveMetrics(broken)\npanel.join(10)\n"
                "print(json.dumps({'status': panel.status, 'failures': panel.failures,\n"
                "                  'shown': panel.failure_box.value}))",
    "join": "import tempfile\n"
            "url = json.loads(os.environ['JUPYTER_FED_TEST_RUNNERS'])[0]['url']\n"
            "client.auth('silo0').create_user('kernel_ana')\n"
            "blob = client.auth('silo0').invite('kernel_ana', 'pw-123456', url=url)['blob']\n"
            "newcomer = jupyter_fed.connect(embedded=True, state_dir=tempfile.mkdtemp())\n"
            "%fed use newcomer\n"
            "%fed join {blob} --password pw-123456 --runner hospital\n"
            "print(json.dumps(list(newcomer.runners()['name'])))",
    "join_again": ("%fed join {blob} --password pw-123456 --runner again",
                   "raises"),
}


@pytest.fixture(scope="module")
def cells(run_notebook: Any) -> dict[str, Any]:
    nb = run_notebook(list(CELLS.values()))
    return dict(zip(CELLS, nb.cells, strict=True))


def test_load_ext_imports_no_heavy_library(cells: dict[str, Any]) -> None:
    assert last_json(cells["load"]) == []


def test_kernel_imports_this_tree(cells: dict[str, Any]) -> None:
    assert Path(stdout(cells["setup"])[0]).resolve().is_relative_to(ROOT)


def test_fed_datasets_lists_both_runners_datasets(cells: dict[str, Any]) -> None:
    out = text(cells["datasets"])

    assert "4 dataset(s) across runners" in out
    for runner, name in [("silo0", "train_silo0"), ("silo1", "train_silo1"), ("silo0", "test"),
                         ("silo1", "test")]:
        assert any(line.split()[:2] == [runner, name] for line in out.splitlines())
    assert "text/html" in mimetypes(cells["datasets"])


def test_fed_runners_shows_health(cells: dict[str, Any]) -> None:
    out = text(cells["runners"])

    assert [line.split()[2] for line in out.splitlines() if line.startswith("silo")] == ["ok", "ok"]


@pytest.mark.parametrize(("cell", "expected"), [
    ("bad_field", "model_config.optimizer.name: must be a PyTorch optimizer name"),
    ("bad_yaml", "the cell body is not valid YAML: line 2"),
    ("bad_dataset", "--datasets: no dataset 'train_silo9' on any runner"),
])
def test_a_refused_cell_shows_one_line_without_traceback(cells: dict[str, Any], cell: str,
                                                         expected: str) -> None:
    outputs = cells[cell]["outputs"]
    errors = [o["text"] for o in outputs if o.get("name") == "stderr"]

    assert "error" not in {o["output_type"] for o in outputs}
    assert len(errors) == 1
    message = errors[0].strip()
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("UsageError: ") and expected in message
    assert " — " in message  # ... and what to do about it


def test_federate_trains_and_fills_the_variable(cells: dict[str, Any]) -> None:
    result = last_json(cells["result"])
    out = text(cells["federate"])

    assert result["status"] == "completed"
    assert result["n"] == 3  # the initial model and one per round
    assert result["auc"] > 0.6
    assert "the Session is in 'trained'" in out and "completed 2 round(s)" in out
    assert "application/vnd.jupyter.widget-view+json" in mimetypes(cells["federate"])


def test_fed_sessions_and_status(cells: dict[str, Any]) -> None:
    assert "completed" in text(cells["sessions"])
    status = text(cells["status"])
    assert "completed, round 2/2" in status and "silo0/train_silo0" in status
    assert "text/html" in mimetypes(cells["status"])


def test_magics_have_real_help(cells: dict[str, Any]) -> None:
    out = text(cells["help"])

    assert "%fed [--token TOKEN]" in out and "runners | datasets | sessions" in out
    assert "%federate [-d A,B]" in out and "--test-datasets" in out and "input_size" in out


def test_fed_join_connects_a_runner_from_an_invitation_once(cells: dict[str, Any]) -> None:
    assert "runner 'hospital' connected at https://" in text(cells["join"])
    assert last_json(cells["join"]) == ["hospital"]
    again = text(cells["join_again"]).strip()
    assert again.startswith("UsageError: joining with the invitation: ")
    assert "already used" in again and "\n" not in again


def test_a_failing_runner_step_is_shown_with_runner_and_reason(cells: dict[str, Any]) -> None:
    outputs = cells["failing"]["outputs"]
    message = next(o["text"] for o in outputs if o.get("text", "").startswith("UsageError"))
    panel = last_json(cells["failures"])

    assert "error" not in {o["output_type"] for o in outputs}
    assert message.startswith("UsageError: session ") and "failed" in message
    assert message.count("\n") == 1  # one line
    # a step only the runner can judge: training diverges there
    assert "client silo0/train_silo0 on runner silo0" in message and "diverged" in message
    assert panel["status"] == "failed"
    assert {(f["client"], f["runner"]) for f in panel["failures"] if f["client"]} == {
        ("silo0/train_silo0", "silo0"), ("silo1/train_silo1", "silo1")}
    assert "diverged" in panel["shown"] and "runner <b>silo1</b>" in panel["shown"]
