"""The smaller findings of issue 12: a 500 on a NUL path, two existence oracles, unbounded text.

- dataset path ``"\\x00"`` answered 500;
- ``/etc/nonexistent.csv`` answered 422 "no file" but ``/etc/shadow`` 403: whether a file exists
  outside the data roots could be probed;
- a 10 MB description and 1,000,000 tags were accepted;
- re-submitting another user's task id answered 409 "taken": whether another principal used a
  task id could be probed.
"""

from __future__ import annotations

import json

import pytest
from conftest import make_token


def _register(admin, name: str, path: str, **extra: object) -> object:
    return admin.post("/v1/datasets", json={"name": name, "path": path, **extra})


@pytest.mark.parametrize("path", ["\x00", "train_silo0.parquet\x00.csv", "/etc/\x00passwd",
                                  "a" * 5000, "/" + "a/" * 3000])
def test_strange_paths_are_4xx_not_500(admin, path) -> None:
    resp = _register(admin, "strange", path)
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.json()["code"] in ("forbidden", "invalid_dataset", "invalid_config")


def test_paths_outside_the_roots_get_one_answer_whether_or_not_they_exist(admin, tmp_path) -> None:
    real = tmp_path / "exists.csv"
    real.write_text("a,b\n" + "1,2\n" * 30)
    answers = []
    for path in ["/etc/shadow", "/etc/nonexistent.csv", "/etc/passwd", "/etc",
                 str(real), str(tmp_path / "missing.csv"), "/proc/self/environ",
                 "/root/.ssh/id_rsa", "../../../../etc/hostname", "../../../../nope/nope.csv"]:
        resp = _register(admin, "probe", path)
        answers.append((resp.status_code, resp.json()["code"], resp.json()["message"]))
    statuses = {(status, code) for status, code, _ in answers}
    assert statuses == {(403, "forbidden")}, answers
    # The message must not depend on existence either: same wording, only the path changes.
    shapes = {msg.replace(p, "<path>") for (_, _, msg), p in zip(answers, [
        "/etc/shadow", "/etc/nonexistent.csv", "/etc/passwd", "/etc", str(real),
        str(tmp_path / "missing.csv"), "/proc/self/environ", "/root/.ssh/id_rsa",
        "../../../../etc/hostname", "../../../../nope/nope.csv"], strict=True)}
    assert len(shapes) == 1, shapes


def test_a_missing_file_inside_the_roots_is_still_named(admin, data_root) -> None:
    resp = _register(admin, "missing", str(data_root / "no_such_file.parquet"))
    assert resp.status_code == 422 and "no file" in resp.json()["message"]


def test_descriptions_and_tags_are_capped(admin, data_root) -> None:
    path = str(data_root / "train_silo0.parquet")
    huge = _register(admin, "huge", path, description="x" * 10_000_000)
    many = admin.post("/v1/datasets", content=json.dumps(
        {"name": "many", "path": path, "tags": ["t"] * 1_000_000}),
        headers={"content-type": "application/json"})
    # within the vault's 64 KiB body limit, so the field caps themselves must refuse these
    long_text = _register(admin, "longtext", path, description="x" * 20_000)
    some_tags = _register(admin, "sometags", path, tags=[f"t{i}" for i in range(5_000)])
    long_tag = _register(admin, "longtag", path, tags=["t" * 10_000])
    assert huge.status_code in (413, 422), huge.text[:200]
    assert many.status_code in (413, 422), many.text[:200]
    for resp in (long_text, some_tags, long_tag):
        assert resp.status_code == 422 and resp.json()["code"] == "invalid_config", resp.text[:200]
        assert len(resp.content) < 4096  # the refusal does not echo the input back
    listed = {d["name"] for d in admin.get("/v1/datasets").json()}
    assert not {"huge", "many", "longtext", "sometags", "longtag"} & listed
    fine = _register(admin, "described", path, description="2024 admissions " * 50,
                     tags=["cardiology", "2024"])
    assert fine.status_code == 201, fine.text


def _spec(task_id: str) -> str:
    """A valid, cheap step (exact statistics of two columns)."""
    return json.dumps({"task_id": task_id, "session_id": "s", "round": 0, "package": "stats",
                       "step": "compute", "datasets": {"data": "train"},
                       "params": {"data_config": {"columns": ["x0", "x1"]}}})


def test_another_principals_task_id_looks_like_a_fresh_one(vault, admin) -> None:
    # Prepare: alice uses a task id; bob then submits the same id, and one nobody used
    alice = make_token(admin, "alice", "model_builder", None)
    bob = make_token(admin, "bob", "model_builder", None)
    with vault.http(alice) as http:
        first = http.post("/v1/tasks", files={"spec": (None, _spec("shared-id"))})
        http.post("/v1/tasks", files={"spec": (None, _spec("alice-only"))})
    with vault.http(bob) as http:
        taken = http.post("/v1/tasks", files={"spec": (None, _spec("shared-id"))})
        fresh = http.post("/v1/tasks", files={"spec": (None, _spec("never-used-id"))})
        status_taken = http.get("/v1/tasks/alice-only")
        status_fresh = http.get("/v1/tasks/never-used-id-2")
        results = [http.get(f"/v1/tasks/{t}/result") for t in ("alice-only", "never-used-id-2")]
        cancels = [http.post(f"/v1/tasks/{t}/cancel") for t in ("alice-only", "never-used-id-2")]

    # Assert: bob's answers do not depend on what alice did
    assert first.status_code == taken.status_code == fresh.status_code == 202, \
        (first.text, taken.text)
    assert status_taken.status_code == status_fresh.status_code == 404
    assert status_taken.json()["message"].replace("alice-only", "<id>") == \
        status_fresh.json()["message"].replace("never-used-id-2", "<id>")
    for pair in (results, cancels):
        assert [r.status_code for r in pair] == [404, 404]


def test_two_principals_can_use_the_same_task_id_without_seeing_each_other(vault, admin) -> None:
    alice = make_token(admin, "alice2", "model_builder", None)
    bob = make_token(admin, "bob2", "model_builder", None)
    spec = _spec("same-id")
    with vault.http(alice) as http:
        a = http.post("/v1/tasks", files={"spec": (None, spec)})
    with vault.http(bob) as http:
        b = http.post("/v1/tasks", files={"spec": (None, spec)})
    assert a.status_code == b.status_code == 202, (a.text, b.text)
    with vault.http(alice, timeout=60) as http:  # the long poll waits up to 30 s
        done_a = http.get("/v1/tasks/same-id", params={"wait": 30}).json()
    with vault.http(bob, timeout=60) as http:
        done_b = http.get("/v1/tasks/same-id", params={"wait": 30}).json()
    assert done_a["task_id"] == done_b["task_id"] == "same-id"
    assert done_a["submitted_at"] != done_b["submitted_at"]
