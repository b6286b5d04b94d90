"""Mistakes are caught when clients join, before anything is dispatched, naming the field.

Each case would otherwise surface only after round 1 as "0 client(s) answered"; and a refused join
must not leave the session pending forever.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import DATA_CONFIG, FEATURES, model_config

from jupyter_fed import SessionTaskGroup
from jupyter_fed.errors import ConfigError, NotFoundError


def _join(client, data_config=None, train=("train_silo0", "train_silo1"), test="test", **cfg):
    session = client.create_fl_session(
        name="checks", min_num_clients=len(train), num_rounds=1, package_name="ffnet",
        model_config=model_config(**cfg), data_config=data_config or DATA_CONFIG).start()
    tb = client.task_builder()
    group = SessionTaskGroup(session)
    for name in train:
        group.add_task(tb.hfl(train_dataset_name=name, test_dataset_name=test))
    return session, group


def _refused(session, group, error=ConfigError) -> str:
    with pytest.raises(error) as caught:
        group.start()
    info = session.info()
    assert info["status"] == "failed"  # never left pending
    assert session.rounds() == []  # nothing was dispatched
    assert caught.value.message in info["error"]
    return caught.value.message


def test_a_target_that_is_not_a_column_is_refused_naming_field_and_dataset(client) -> None:
    session, group = _join(client, {"predictors": FEATURES, "target": "label"})

    message = _refused(session, group)

    assert "data_config.target 'label' is not a column of silo0/train_silo0" in message
    assert "silo0/test" in message and "(columns: x0, x1," in message


def test_a_misspelt_predictor_is_refused(client) -> None:
    session, group = _join(client, {"predictors": [*FEATURES[:-1], "x99"], "target": "y"})

    assert "data_config.predictors 'x99' is not a column of" in _refused(session, group)


def test_a_continuous_target_for_classification_is_refused(client) -> None:
    session, group = _join(client, {"predictors": [*FEATURES[1:], "y"], "target": "x0"})

    message = _refused(session, group)

    assert "data_config.target 'x0'" in message and "not class labels" in message


def test_a_dataset_that_does_not_exist_is_refused(client) -> None:
    session, group = _join(client, train=("train_silo0", "train_silox"))

    assert "no dataset 'train_silox'" in _refused(session, group, NotFoundError)


def test_more_classes_than_outputs_and_id_predictors_are_refused(client, federation,
                                                                 data_root: Path) -> None:
    name = "three_" + uuid.uuid4().hex[:6]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f: rng.normal(size=300) for f in FEATURES})
    frame["y"] = np.arange(300) % 3
    frame["pid"] = [f"P-{i:05d}" for i in range(300)]
    frame.to_parquet(data_root / f"{name}.parquet")
    proc = federation.processes["silo0"]
    with proc.http() as admin:
        assert admin.post("/v1/datasets", json={"name": name, "path": f"{name}.parquet",
                                                "id_columns": ["pid"]}).status_code == 201
    try:
        session, group = _join(client, train=(name,), test=None)
        labels = _refused(session, group)
        session, group = _join(client, {"predictors": [*FEATURES[:-1], "pid"], "target": "y"},
                               train=(name,), test=None)
        ids = _refused(session, group)
    finally:
        with proc.http() as admin:
            admin.delete(f"/v1/datasets/{name}")

    assert f"data_config.target 'y' of silo0/{name} has 3 classes but " \
           "model_config.model.params.output_size is 2" in labels
    assert "data_config.predictors 'pid' is an id column" in ids


def test_a_good_session_still_joins(client) -> None:
    _session, group = _join(client)

    ctx = group.start()

    assert ctx.wait(120, 0.5) is True


def test_runner_qualified_dataset_names_pick_one_of_several(client) -> None:
    session = client.create_fl_session(name="qualified", min_num_clients=1, num_rounds=1,
                                       model_config=model_config(), data_config=DATA_CONFIG).start()

    ambiguous = SessionTaskGroup(session).add_task(
        client.task_builder().hfl(train_dataset_name="test"))
    session2 = client.create_fl_session(name="qualified2", min_num_clients=1, num_rounds=1,
                                        model_config=model_config(), data_config=DATA_CONFIG).start()
    qualified = SessionTaskGroup(session2).add_task(client.task_builder().hfl(
        train_dataset_name="silo1/test"))

    with pytest.raises(ConfigError, match="exists on several runners"):
        ambiguous.start()
    ctx = qualified.start()
    assert ctx.wait(120, 0.5) is True
    assert [c["client_id"] for c in session2.info()["clients"]] == ["silo1/test"]
