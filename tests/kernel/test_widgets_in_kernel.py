"""The panels' Python-side state in a real kernel, driven as a user's clicks would drive them."""

from __future__ import annotations

from typing import Any

import pytest
from nbhelpers import SETUP, last_json

FEATURES = [f"x{i}" for i in range(15)]

CELLS = {
    "setup": SETUP,
    "picker": "from jupyter_fed.widgets import DatasetPicker, LiveMetrics, SessionForm\n"
              "picker = DatasetPicker(client)\n"
              "everything = list(picker.visible)\n"
              "picker.filter_box.value = 'silo0'          # typing in the filter box\n"
              "by_text = list(picker.visible)\n"
              "picker.filter_text = 'train x14'           # every word must match\n"
              "by_words = list(picker.visible)\n"
              "picker.filter_text = ''\n"
              "print(json.dumps({'all': everything, 'text': by_text, 'words': by_words,\n"
              "                  'tags': [v for _, v in picker.tag_box.options]}))",
    "form": "form = SessionForm(client, picker=picker)\n"
            "picker.picker.value = ('silo0/train_silo0', 'silo1/train_silo1')  # picking in the list\n"
            "form.target_box.value = 'y'\n"
            "form.test_box.value = 'test'\n"
            "form.rounds_box.value = 2\n"
            "print(json.dumps({'selected': picker.selected, 'columns': form.columns,\n"
            "                  'targets': list(form.target_box.options),\n"
            "                  'predictors': list(form.predictors_box.options),\n"
            "                  'chosen': list(form.predictors_box.value), 'cell': form.cell}))",
    "start": "form.start_button.click()\n"
             "form.session.wait(120)\n"
             "live = form.live\n"
             "live.join(10)\n"
             "print(json.dumps({'status': live.status, 'label': live.status_label.value,\n"
             "                  'value': live.progress.value, 'max': live.progress.max,\n"
             "                  'running': live.running, 'plot': len(live.plot.value),\n"
             "                  'stop_disabled': live.stop_button.disabled,\n"
             "                  'message': form.message.value}))",
    "close": "import threading, time\n"
             "spec = form.spec()\n"
             "spec.rounds = 50\n"
             "running = spec.launch(client)\n"
             "panel = LiveMetrics(running, poll_interval=0.05)\n"
             "time.sleep(0.3)\n"
             "before = panel.running\n"
             "panel.close()\n"
             "during = running.status()\n"
             "running.cancel()\n"
             "print(json.dumps({'before': before, 'after': panel.running, 'during': during,\n"
             "                  'threads': [t.name for t in threading.enumerate()\n"
             "                              if t.name.startswith('jupyter-fed-live')]}))",
    "same_cell": "from jupyter_fed.magics import SessionSpec\n"
                 "line, body = form.cell.split('\\n', 1)\n"
                 "again = SessionSpec.from_cell('ffnet', body, datasets='train_silo0,train_silo1',\n"
                 "                              test_datasets='test', rounds=2)\n"
                 "again.fill_defaults()\n"
                 "print(json.dumps(again.model_config == form.session.info()['config']['model_config']\n"
                 "                 and again.data_config == form.session.info()['config']['data_config']))",
}


@pytest.fixture(scope="module")
def cells(run_notebook: Any) -> dict[str, Any]:
    nb = run_notebook(list(CELLS.values()))
    return dict(zip(CELLS, nb.cells, strict=True))


def test_picker_filters_reduce_the_rows(cells: dict[str, Any]) -> None:
    state = last_json(cells["picker"])

    assert state["all"] == ["silo0/test", "silo0/train_silo0", "silo1/test", "silo1/train_silo1"]
    assert state["text"] == ["silo0/test", "silo0/train_silo0"]
    assert state["words"] == ["silo0/train_silo0", "silo1/train_silo1"]
    assert state["tags"] == ["", "demo"]


def test_form_offers_the_common_columns(cells: dict[str, Any]) -> None:
    state = last_json(cells["form"])

    assert state["selected"] == ["silo0/train_silo0", "silo1/train_silo1"]
    assert state["columns"] == [*FEATURES, "y"]
    assert state["targets"] == [*FEATURES, "y"]
    assert state["predictors"] == FEATURES and state["chosen"] == FEATURES
    assert state["cell"].startswith("%%federate ffnet --datasets train_silo0,train_silo1 "
                                    "--test-datasets test --rounds 2 -o session\n")


def test_start_button_runs_a_session_that_live_metrics_follows_to_the_end(cells: dict[str, Any]
                                                                          ) -> None:
    state = last_json(cells["start"])

    assert state["status"] == "completed" and "completed" in state["label"]
    assert state["value"] == state["max"] == 2
    assert state["running"] is False and state["stop_disabled"] is True
    assert state["plot"] > 1000  # a PNG of the curves
    assert "started" in state["message"]


def test_closing_a_panel_stops_its_thread_while_the_session_runs(cells: dict[str, Any]) -> None:
    state = last_json(cells["close"])

    assert state["before"] is True and state["after"] is False
    assert state["during"] in ("pending", "running")
    assert state["threads"] == []  # the Start button's panel ended with its session, too


def test_the_forms_cell_configures_the_same_session(cells: dict[str, Any]) -> None:
    assert last_json(cells["same_cell"]) is True
