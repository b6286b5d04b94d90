"""Per-dataset grants and the access-request queue, against a real runner.

The attacker here holds a valid model-builder token of the runner but no grant: they must not
learn which datasets exist (catalog, dataset routes, task submission, requests all answer the
same for a granted-to-others dataset as for none), must not use a dataset beyond their grant
(packages, steps, epsilon), and cannot decide their own requests.
"""

from __future__ import annotations

import json

import pytest
from conftest import make_token


def _task(task_id: str, dataset: str, package: str = "stats", **params: object) -> str:
    if package == "stats":
        params = {"data_config": {"columns": ["x0", "x1"]}, **params}
        step = "compute"
    else:  # eda: a DP release that spends epsilon on the dataset
        params = {"model_config": {"epsilon": 1.0}, "data_config": {dataset: ["x0"]}, **params}
        step = "compute"
    return json.dumps({"task_id": task_id, "session_id": "s", "round": 0, "package": package,
                       "step": step, "datasets": {"data": dataset}, "params": params})


def _shape(resp, name: str) -> tuple[int, str, str]:
    body = resp.json()
    return resp.status_code, body["code"], body["message"].replace(name, "<name>")


@pytest.fixture()
def custodian(vault, admin):
    token = make_token(admin, "curator", "data_custodian", None)
    with vault.http(token) as http:
        yield http


def test_a_builder_without_a_grant_sees_nothing_and_cannot_tell_what_exists(vault, admin) -> None:
    # Prepare: mallory has a valid builder token and no grant; "train" exists, "ghost" does not
    token = make_token(admin, "mallory", "model_builder", None, grant=())
    with vault.http(token) as http:
        catalog = http.get("/v1/datasets").json()
        answers = {name: [_shape(http.get(f"/v1/datasets/{name}"), name),
                          _shape(http.get(f"/v1/datasets/{name}/policy"), name),
                          _shape(http.post("/v1/tasks", files={"spec": (None, _task(
                              f"t-{name}", name))}), name)]
                   for name in ("train", "ghost")}

    # Assert: an empty catalog, and word for word the same 404s for the real and the missing name
    assert catalog == []
    assert answers["train"] == answers["ghost"]
    assert all(status == 404 for status, _, _ in answers["train"])


def test_a_grant_shows_one_dataset_and_limits_packages_and_epsilon(vault, admin) -> None:
    # Prepare: alice may run stats and eda on train, with an epsilon budget of 1.5 of her own
    token = make_token(admin, "alice", "model_builder", None, grant=())
    granted = admin.post("/v1/grants", json={"user": "alice", "dataset": "train",
                                             "packages": ["stats", "eda"],
                                             "epsilon_budget": 1.5})
    assert granted.status_code == 201, granted.text
    with vault.http(token) as http:
        catalog = {d["name"] for d in http.get("/v1/datasets").json()}
        policy = http.get("/v1/datasets/train/policy").json()
        stats = http.post("/v1/tasks", files={"spec": (None, _task("a-stats", "train"))})
        ffnet = http.post("/v1/tasks", files={"spec": (None, json.dumps({
            "task_id": "a-ffnet", "session_id": "s", "round": 0, "package": "ffnet",
            "step": "fit", "datasets": {"train": "train"}, "params": {}}))})
        first_dp = http.post("/v1/tasks", files={"spec": (None, _task("a-eda-1", "train", "eda"))})
        second_dp = http.post("/v1/tasks", files={"spec": (None, _task("a-eda-2", "train", "eda"))})
        other = http.post("/v1/tasks", files={"spec": (None, _task("a-test", "test"))})

    # Assert: only train is hers; stats and one eda run, ffnet is refused by the grant, and the
    # second eda overdraws her own budget (1.5), not the policy's default 10
    assert catalog == {"train"}
    assert policy["epsilon_budget"] == 1.5 and set(policy["allowed_packages"]) == {"eda", "stats"}
    assert stats.status_code == 202, stats.text
    assert ffnet.status_code == 403 and "grant" in ffnet.json()["message"], ffnet.text
    assert first_dp.status_code == 202, first_dp.text
    assert second_dp.status_code == 403, second_dp.text
    assert second_dp.json()["code"] == "privacy_budget_exceeded"
    assert other.status_code == 404


def test_a_grant_can_name_single_steps(vault, admin) -> None:
    token = make_token(admin, "stepper", "model_builder", None, grant=())
    assert admin.post("/v1/grants", json={"user": "stepper", "dataset": "train",
                                          "packages": ["stats.compute"]}).status_code == 201
    with vault.http(token) as http:
        ok = http.post("/v1/tasks", files={"spec": (None, _task("s-1", "train"))})
        eda = http.post("/v1/tasks", files={"spec": (None, _task("s-2", "train", "eda"))})
    assert ok.status_code == 202, ok.text
    assert eda.status_code == 403


def test_revoking_a_grant_and_deleting_a_user_take_access_away(vault, admin) -> None:
    token = make_token(admin, "bob", "model_builder", None, grant=("train",))
    with vault.http(token) as http:
        before = {d["name"] for d in http.get("/v1/datasets").json()}
        grant_id = admin.get("/v1/grants", params={"user": "bob"}).json()[0]["grant_id"]
        assert admin.delete(f"/v1/grants/{grant_id}").status_code == 204
        after = http.get("/v1/datasets").json()
        refused = http.post("/v1/tasks", files={"spec": (None, _task("b-1", "train"))})
    # a user deleted and created again starts with nothing
    make_token(admin, "carl", "model_builder", None, grant=("train",))
    assert admin.delete("/v1/users/carl").status_code == 204
    token = make_token(admin, "carl", "model_builder", None, grant=())
    with vault.http(token) as http:
        reborn = http.get("/v1/datasets").json()

    assert before == {"train"} and after == [] and refused.status_code == 404
    assert reborn == []


def test_public_datasets_are_seen_by_every_token(vault, admin) -> None:
    token = make_token(admin, "passerby", "model_builder", None, grant=())
    policy = admin.get("/v1/datasets/test/policy").json()
    assert admin.put("/v1/datasets/test/policy", json={**policy, "public": True}).status_code == 200
    try:
        with vault.http(token) as http:
            seen = {d["name"] for d in http.get("/v1/datasets").json()}
            ran = http.post("/v1/tasks", files={"spec": (None, _task("p-1", "test"))})
    finally:
        admin.put("/v1/datasets/test/policy", json=policy)
    assert seen == {"test"}
    assert ran.status_code == 202, ran.text


def test_a_request_is_filed_decided_by_the_custodian_and_audited(vault, admin, custodian) -> None:
    # Prepare: dora has no grant; she asks for test (stats, epsilon 2) and for a made-up name
    token = make_token(admin, "dora", "model_builder", None, grant=())
    with vault.http(token) as http:
        asked = http.post("/v1/requests", json={"dataset": "test", "packages": ["stats"],
                                                "epsilon": 2.0, "reason": "cohort sizes"})
        ghost = http.post("/v1/requests", json={"dataset": "ghost", "reason": "?"})
        self_approve = http.post(f"/v1/requests/{asked.json()['request_id']}/approve", json={})
        pending = http.get("/v1/requests/self").json()
        inbox = custodian.get("/v1/requests", params={"status": "pending"}).json()
        # Act: the custodian approves with a smaller budget, and denies the other
        approved = custodian.post(f"/v1/requests/{asked.json()['request_id']}/approve",
                                  json={"epsilon": 0.5, "note": "start small"})
        denied = custodian.post(f"/v1/requests/{ghost.json()['request_id']}/deny",
                                json={"note": "no such data here"})
        twice = custodian.post(f"/v1/requests/{ghost.json()['request_id']}/approve", json={})
        mine = {r["request_id"]: r for r in http.get("/v1/requests/self").json()}
        catalog = {d["name"] for d in http.get("/v1/datasets").json()}
        policy = http.get("/v1/datasets/test/policy").json()

    # Assert: both filed alike (no existence oracle), only the custodian decides, the grant is
    # what the custodian approved, the builder sees the answers, and the log has every decision
    assert asked.status_code == ghost.status_code == 201
    assert set(asked.json()) == set(ghost.json()) and "dataset_exists" not in asked.json()
    assert self_approve.status_code == 403
    assert {r["status"] for r in pending} == {"pending"}
    by_dataset = {r["dataset"]: r for r in inbox if r["user"] == "dora"}
    assert by_dataset["test"]["dataset_exists"] and not by_dataset["ghost"]["dataset_exists"]
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert denied.status_code == 200 and twice.status_code == 409
    assert mine[asked.json()["request_id"]]["status"] == "approved"
    assert mine[ghost.json()["request_id"]]["note"] == "no such data here"
    assert catalog == {"test"} and policy["epsilon_budget"] == 0.5
    assert policy["allowed_packages"] == ["stats"]
    audit = admin.get("/v1/audit", params={"principal": "curator"}).json()
    decisions = {(row["step"], row["dataset"]) for row in audit if row["status"] == 200}
    assert {("approve", "test"), ("deny", "ghost")} <= decisions


def test_the_request_queue_is_bounded_per_builder(vault, admin) -> None:
    token = make_token(admin, "spammer", "model_builder", None, grant=())
    with vault.http(token) as http:
        codes = [http.post("/v1/requests", json={"dataset": f"d{i}"}).status_code
                 for i in range(22)]
        huge = http.post("/v1/requests", json={"dataset": "x", "reason": "x" * 5000})
    assert codes[:20] == [201] * 20 and codes[20:] == [409, 409]
    assert huge.status_code == 422
