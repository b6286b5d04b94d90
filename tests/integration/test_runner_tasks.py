"""The task endpoints of one runner, spoken to directly over HTTP."""

from __future__ import annotations

import json

import pytest
from helpers import DATA_CONFIG, model_config

from jupyter_fed.packages.ffnet import _net
from jupyter_fed.packages.ffnet.config import parse
from jupyter_fed.wire import decode, encode


@pytest.fixture()
def http(federation):
    with federation.processes["silo1"].http(timeout=60) as c:
        yield c


def _spec(task_id: str, **over):
    spec = {"task_id": task_id, "session_id": "s1", "round": 1, "package": "ffnet", "step": "fit",
            "datasets": {"train": "train_silo1", "test": "test"},
            "params": {"model_config": model_config(), "data_config": DATA_CONFIG}}
    spec.update(over)
    return spec


def _weights() -> bytes:
    return encode(_net.initial_weights(parse(model_config(), DATA_CONFIG)[0]))


def _post(http, spec, tensors: bytes | None):
    files = {"spec": (None, json.dumps(spec), "application/json")}
    if tensors:
        files["tensors"] = ("t", tensors, "application/octet-stream")
    return http.post("/v1/tasks", files=files)


def test_a_step_runs_and_returns_weights_as_safetensors(http) -> None:
    weights = _weights()
    resp = _post(http, _spec("t-run"), weights)
    assert resp.status_code == 202

    status = http.get("/v1/tasks/t-run", params={"wait": 30}).json()
    result = decode(http.get("/v1/tasks/t-run/result").content)

    assert status["state"] == "succeeded" and status["progress"] == 1.0
    assert status["outputs"]["num_examples"] == 2000
    assert set(result) == set(decode(weights))
    assert not all((result[k] == v).all() for k, v in decode(weights).items())  # it trained


def test_a_repeated_task_id_returns_the_same_task_and_never_runs_twice(http) -> None:
    weights = _weights()
    first = _post(http, _spec("t-idem"), weights).json()
    http.get("/v1/tasks/t-idem", params={"wait": 30})

    again = _post(http, _spec("t-idem"), weights)
    other = _post(http, _spec("t-idem", round=2), weights)

    assert again.status_code == 202
    assert again.json()["submitted_at"] == first["submitted_at"]
    assert again.json()["state"] == "succeeded"
    assert other.status_code == 409


def test_unknown_package_and_malformed_spec_are_422(http) -> None:
    assert _post(http, _spec("t-pkg", package="nope"), None).status_code == 422
    resp = http.post("/v1/tasks", files={"spec": (None, "{not json", "application/json")})
    assert resp.status_code == 422
    assert resp.json()["code"] == "invalid_config"


def test_bad_tensors_are_a_400_not_a_crash(http) -> None:
    resp = _post(http, _spec("t-bad"), b"definitely not safetensors")
    assert resp.status_code == 400
    assert resp.json()["code"] == "bad_tensors"


def test_a_failing_step_reports_why(http) -> None:
    spec = _spec("t-fail", params={"model_config": model_config(),
                                   "data_config": {"predictors": ["x0"] * 15, "target": "nope"}})
    _post(http, spec, _weights())
    status = http.get("/v1/tasks/t-fail", params={"wait": 30}).json()

    assert status["state"] == "failed"
    assert "nope" in status["error"]["message"]
    assert http.get("/v1/tasks/t-fail/result").status_code == 409


def test_a_submission_can_wait_for_its_step_and_carry_its_arrays(http, federation) -> None:
    from jupyter_fed.wire import answer
    from jupyter_fed.wire.tensors import metadata

    files = {"spec": (None, json.dumps(_spec("t-inline")), "application/json"),
             "tensors": ("t", _weights(), "application/octet-stream")}
    resp = http.post("/v1/tasks", files=files, params={"wait": 30, "inline": 1 << 24})

    assert resp.status_code == 202
    assert resp.headers["content-type"].startswith(answer.MEDIA_TYPE)
    status, data = answer.unpack(resp.content)
    assert json.loads(status)["state"] == "succeeded"
    assert data == http.get("/v1/tasks/t-inline/result").content  # the same bytes, provenance too
    assert metadata(data)["task_id"] == "t-inline"

    # too small a limit, or a token that may not read results: the status alone, as before
    files["spec"] = (None, json.dumps(_spec("t-small")), "application/json")
    small = http.post("/v1/tasks", files=files, params={"wait": 30, "inline": 10})
    assert small.headers["content-type"].startswith("application/json")
    assert small.json()["state"] == "succeeded" and small.json()["has_tensors"]

    token = federation.processes["silo1"].builder_token(
        "submitter", scopes=["create_session", "read_user_session"])
    with federation.processes["silo1"].http(token, timeout=60) as limited:
        files["spec"] = (None, json.dumps(_spec("t-limited")), "application/json")
        blind = limited.post("/v1/tasks", files=files, params={"wait": 30, "inline": 1 << 24})
    assert blind.status_code == 202, blind.text
    assert blind.headers["content-type"].startswith("application/json")
    assert blind.json()["state"] in ("succeeded", "failed")


def test_answer_framing_refuses_a_truncated_answer() -> None:
    from jupyter_fed.wire import answer

    packed = answer.pack(b'{"a": 1}', b"tensors")
    assert answer.unpack(packed) == (b'{"a": 1}', b"tensors")
    with pytest.raises(ValueError):
        answer.unpack(packed[:3])
    with pytest.raises(ValueError):
        answer.unpack(packed[:4] + b"{")
