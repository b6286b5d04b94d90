"""``read_user_session`` reads one's own tasks; ``read_session`` (a custodian's) lists everyone's.

A builder's token needs only ``create_session`` + ``read_user_session`` to run sessions (the
reference SDK's end-user token). Listings carry metadata, never a task's outputs.
"""

from __future__ import annotations

import json

from conftest import make_token
from helpers import DATA_CONFIG, model_config


def _submit(vault, token: str, task_id: str) -> None:
    spec = {"task_id": task_id, "session_id": "s-rus", "round": 1, "package": "ffnet",
            "step": "fit", "datasets": {"train": "train", "test": "test"},
            "params": {"model_config": model_config(), "data_config": DATA_CONFIG}}
    with vault.http(token, timeout=60) as http:
        resp = http.post("/v1/tasks", files={"spec": (None, json.dumps(spec), "application/json")},
                         params={"wait": 30})
    assert resp.status_code == 202, resp.text


def test_a_builder_reads_its_own_tasks_and_only_its_own(vault, admin) -> None:
    ana = make_token(admin, "rus_ana", "model_builder", ["create_session", "read_user_session"])
    bob = make_token(admin, "rus_bob", "model_builder", ["create_session", "read_user_session"])
    _submit(vault, ana, "t-ana")
    _submit(vault, bob, "t-bob")

    with vault.http(ana) as http:
        own = http.get("/v1/tasks/t-ana")
        other = http.get("/v1/tasks/t-bob")
        listing = http.get("/v1/tasks").json()
        everyone = http.get("/v1/tasks", params={"all": "true"})

    assert own.status_code == 200 and own.json()["state"] in ("succeeded", "failed")
    assert other.status_code == 404
    assert [t["task_id"] for t in listing] == ["t-ana"]
    assert listing[0]["principal"] == "rus_ana" and "outputs" not in listing[0]
    assert everyone.status_code == 403


def test_a_custodian_with_read_session_lists_every_principals_tasks(vault, admin) -> None:
    ana = make_token(admin, "rus_ana", "model_builder", ["create_session", "read_user_session"])
    _submit(vault, ana, "t-ana-2")
    custodian = make_token(admin, "rus_cus", "data_custodian", ["read_session"])

    with vault.http(custodian) as http:
        everyone = http.get("/v1/tasks", params={"all": "true", "limit": 1000})
        own_status = http.get("/v1/tasks/t-ana-2")  # read_session includes read_user_session

    assert everyone.status_code == 200
    assert "t-ana-2" in {t["task_id"] for t in everyone.json()}
    assert all("outputs" not in t for t in everyone.json())
    assert own_status.status_code == 404  # not its task: the scope passes, the id is not its own


def test_builders_can_no_longer_be_given_read_session(admin) -> None:
    admin.post("/v1/users", json={"name": "rus_old", "role": "model_builder"})
    resp = admin.post("/v1/tokens", json={"user": "rus_old", "scopes": ["read_session"]})

    assert resp.status_code == 403
    assert "read_session" in resp.json()["message"]
