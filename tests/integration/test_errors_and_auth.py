"""What a caller sees when something is wrong: status codes, JSON bodies, FedError subclasses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import DATA_CONFIG, model_config

from jupyter_fed import SessionTaskGroup
from jupyter_fed.errors import ConfigError, NotFoundError


@pytest.fixture()
def runner(federation):
    proc = federation.processes["silo0"]
    with proc.http() as http:
        yield http


def test_health_needs_no_token(federation) -> None:
    with federation.processes["silo0"].http("") as http:
        assert http.get("/v1/health").json()["status"] == "ok"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer jfr_not-a-real-token"},
                                     {"Authorization": "Basic abc"}])
def test_missing_or_wrong_token_is_401_with_a_json_body(federation, headers) -> None:
    proc = federation.processes["silo0"]
    for method, path in [("GET", "/v1/datasets"), ("POST", "/v1/tasks"), ("GET", "/v1/tasks/x")]:
        with proc.http("") as http:
            resp = http.request(method, path, headers=headers)
        assert resp.status_code == 401
        body = resp.json()
        assert body["code"] == "unauthorized" and body["message"] and body["hint"]


def test_unknown_dataset_is_404_over_rest(runner) -> None:
    resp = runner.get("/v1/datasets/nope")
    assert resp.status_code == 404
    assert "nope" in resp.json()["message"]


def test_unknown_dataset_is_a_fed_error_in_the_sdk(client) -> None:
    session = client.create_fl_session(name="x", min_num_clients=1, num_rounds=1,
                                       model_config=model_config(), data_config=DATA_CONFIG).start()
    with pytest.raises(NotFoundError) as info:
        SessionTaskGroup(session).add_task(client.task_builder().hfl("no_such_data")).start()
    assert "no_such_data" in info.value.message
    assert info.value.hint


def test_bad_model_config_names_the_fields(client) -> None:
    cfg = model_config(optimizer={"name": "Sgdd"}, batch_size=0)
    with pytest.raises(ConfigError) as info:
        client.create_fl_session(name="x", num_rounds=1, model_config=cfg, data_config=DATA_CONFIG)
    fields = {d["field"] for d in info.value.details}
    assert fields == {"model_config.optimizer.name", "model_config.batch_size"}
    assert "model_config.batch_size" in info.value.message


def _register(runner, name: str, path: Path, **extra):
    return runner.post("/v1/datasets", json={"name": name, "path": str(path), **extra})


def test_dataset_with_nulls_or_text_is_refused_naming_the_columns(runner, data_root: Path) -> None:
    path = data_root / "bad.parquet"
    pq.write_table(pa.table({"age": [1.0, None, 3.0], "city": ["a", "b", "c"],
                             "score": [0.1, np.nan, 0.3], "1st": [1, 2, 3]}), path)

    resp = _register(runner, "bad", path)

    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "invalid_dataset"
    assert {d["column"] for d in body["details"]} == {"age", "city", "score", "1st"}
    assert "city" in body["message"] and "age" in body["message"]
    assert "'a'" not in body["message"]  # never cell values


def test_id_columns_may_be_text(runner, data_root: Path) -> None:
    path = data_root / "ids.csv"
    path.write_text("id,x\n" + "".join(f"p{i},{i}\n" for i in range(30)))

    resp = _register(runner, "with_ids", path, id_columns=["id"])
    runner.delete("/v1/datasets/with_ids")  # later tests count the shared runners' datasets

    assert resp.status_code == 201, resp.text
    cols = {c["name"]: c["role"] for c in resp.json()["columns"]}
    assert cols == {"id": "id", "x": "feature"}


def test_paths_outside_the_data_roots_are_refused(runner, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")

    resp = _register(runner, "outside", outside)

    assert resp.status_code == 403
    assert "data roots" in resp.json()["message"]


def test_bad_dataset_name_is_422_with_the_field(runner, data_root: Path) -> None:
    resp = _register(runner, "9lives", data_root / "test.parquet")
    assert resp.status_code == 422
    assert resp.json()["details"][0]["field"] == "name"
