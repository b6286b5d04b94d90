"""Asking a custodian for access from a notebook, in a real kernel: ``%fed request``, the
custodian's answer through ``client.auth(runner)``, the notebook told of it, ``%fed requests``,
and ``AccessRequest.wait()`` on a denial."""

from __future__ import annotations

from typing import Any

import pytest
from nbhelpers import SETUP, last_json, text

BUILDER = ("import tempfile, uuid\n"
           "user = 'asker_' + uuid.uuid4().hex[:6]\n"
           "runners = json.loads(os.environ['JUPYTER_FED_TEST_RUNNERS'])\n"
           "custodian = client.auth('silo0')\n"
           "custodian.create_user(user)\n"
           "mine = [{**r, 'token': client.auth(r['name']).create_token(user)['token']}\n"
           "        for r in runners if r['name'] == 'silo0']\n"
           "builder = jupyter_fed.connect(embedded=True, state_dir=tempfile.mkdtemp(), runners=mine)\n"
           "%load_ext jupyter_fed\n"
           "%fed use builder\n"
           "print(json.dumps(list(builder.datasets()['name'])))")

CELLS = {
    "setup": SETUP + "\n" + BUILDER,
    "request": "%fed request test --runner silo0 --package stats --epsilon 2 --reason 'cohort sizes'",
    "inbox": "pending = [r for r in custodian.requests() if r['user'] == user]\n"
             "decided = custodian.approve(pending[0]['request_id'], epsilon=0.5, note='start small')\n"
             "print(json.dumps([len(pending), pending[0]['dataset'], decided['status']]))",
    "told": "%fed datasets",
    "requests": "%fed requests",
    "grants": "print(builder.my_grants().to_json(orient='records'))",
    "denied": "req = builder.request_access('silo0', 'train_silo0', reason='more rows')\n"
              "custodian.deny(req.id, note='not for this project')\n"
              "try:\n"
              "    req.wait(timeout=30, poll=0.2)\n"
              "except Exception as exc:\n"
              "    print(json.dumps([type(exc).__name__, str(exc)]))",
}


@pytest.fixture(scope="module")
def cells(run_notebook: Any) -> dict[str, Any]:
    nb = run_notebook(list(CELLS.values()))
    return dict(zip(CELLS, nb.cells, strict=True))


def test_a_new_builder_sees_no_dataset(cells: dict[str, Any]) -> None:
    assert last_json(cells["setup"]) == []


def test_a_request_filed_from_the_notebook_reaches_the_custodian(cells: dict[str, Any]) -> None:
    assert "pending" in text(cells["request"]) and "test" in text(cells["request"])
    assert last_json(cells["inbox"]) == [1, "test", "approved"]


def test_the_notebook_is_told_of_the_decision_and_sees_the_dataset(cells: dict[str, Any]) -> None:
    out = text(cells["told"])
    assert "was approved — start small" in out
    assert any(line.split()[:2] == ["silo0", "test"] for line in out.splitlines())
    assert "approved" in text(cells["requests"])


def test_the_grant_is_what_the_custodian_approved(cells: dict[str, Any]) -> None:
    (grant,) = last_json(cells["grants"])
    assert grant["dataset"] == "test" and grant["epsilon_budget"] == 0.5
    assert grant["packages"] == ["stats"]


def test_waiting_on_a_denied_request_raises_with_the_note(cells: dict[str, Any]) -> None:
    name, message = last_json(cells["denied"])
    assert name == "AccessDenied" and "not for this project" in message
