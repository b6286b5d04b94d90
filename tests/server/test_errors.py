"""Error bodies: the FedError's status and {code, message, hint, details}, never a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import DATA_CONFIG, model_config

from jupyter_fed.coordinator import Coordinator


def _session(**overrides: Any) -> dict[str, Any]:
    body = {"name": "e", "package_name": "ffnet", "min_num_clients": 2, "num_rounds": 2,
            "model_config": model_config(), "data_config": DATA_CONFIG}
    body.update(overrides)
    return body


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "sessions/nope"), ("POST", "sessions/nope/start"), ("GET", "sessions/nope/metrics"),
    ("GET", "sessions/nope/model"), ("DELETE", "runners/nope"), ("GET", "events?session=nope"),
])
async def test_unknown_things_are_404_with_a_json_body(api: Any, method: str, path: str) -> None:
    path, _, query = path.partition("?")
    params = dict([query.split("=")]) if query else None

    status, body = await api(method, path, params=params)

    assert status == 404
    assert body["code"] == "not_found" and "nope" in body["message"] and "hint" in body


async def test_bad_session_config_is_422_naming_each_field(api: Any) -> None:
    status, body = await api("POST", "sessions", _session(model_config=model_config(batch_size=-1),
                                                          min_num_clients=0))

    assert status == 422
    assert body["code"] == "invalid_config"
    assert {d["field"] for d in body["details"]} >= {"min_num_clients"} or \
        {d["field"] for d in body["details"]} == {"model_config.batch_size"}


async def test_bad_model_config_is_422_with_the_package_fields(api: Any) -> None:
    status, body = await api("POST", "sessions", _session(model_config=model_config(batch_size=-1)))

    assert status == 422
    assert body["details"] == [{"field": "model_config.batch_size",
                                "error": "Input should be greater than or equal to 1"}]


@pytest.mark.parametrize(("payload", "field"), [
    ("{not json", None), ("[1, 2]", "body"), (_session(num_rounds="3"), "num_rounds"),
    (_session(surprise=1), "surprise"), ({"description": "no name"}, "name"),
])
async def test_malformed_bodies_are_422(api: Any, payload: Any, field: str | None) -> None:
    status, body = await api("POST", "sessions", payload)

    assert status == 422
    assert body["code"] == "invalid_config"
    if field is not None:
        assert field in [d["field"] for d in body["details"]]


@pytest.mark.parametrize("path", ["sessions/x/wait?timeout=soon", "sessions/x/logs?after=-1"])
async def test_bad_query_parameters_are_422(api: Any, path: str) -> None:
    path, _, query = path.partition("?")

    status, body = await api("GET", path, params=dict([query.split("=")]))

    assert status == 422
    assert body["details"][0]["field"] == query.split("=")[0]


async def test_starting_twice_is_a_conflict(api: Any) -> None:
    _, created = await api("POST", "sessions", _session())
    await api("POST", f"sessions/{created['id']}/start")

    status, body = await api("POST", f"sessions/{created['id']}/start")

    assert status == 409 and body["code"] == "conflict"


async def test_a_bug_is_500_internal_error_without_details(api: Any, monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    def broken(self: Coordinator) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Coordinator, "sessions", broken)

    status, body = await api("GET", "sessions")

    assert status == 500
    assert body["code"] == "internal_error"
    assert "secret" not in str(body) and "Traceback" not in str(body)


async def test_unknown_route_and_wrong_method(api: Any) -> None:
    missing, body = await api("GET", "no/such/route")
    wrong, body2 = await api("DELETE", "sessions")

    assert (missing, body["code"]) == (404, "not_found")
    assert (wrong, body2["code"]) == (405, "method_not_allowed")


async def test_an_unreachable_runner_is_503_and_the_token_is_not_echoed(api: Any) -> None:
    status, body = await api("POST", "runners", {"name": "ghost", "url": "http://127.0.0.1:9",
                                                 "token": "s3cret-token"})

    assert status == 503
    assert body["code"] == "runner_unavailable"
    assert "s3cret" not in str(body)


def test_nan_travels_as_null() -> None:
    import json

    from jupyter_fed.wire.models import json_safe

    data = {"auc": float("nan"), "loss": 0.5, "rows": [float("inf"), 1.0], "n": 3}
    assert json.loads(json.dumps(json_safe(data), allow_nan=False)) == {
        "auc": None, "loss": 0.5, "rows": [None, 1.0], "n": 3}
