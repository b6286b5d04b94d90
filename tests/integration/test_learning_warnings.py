"""A model that learned nothing is flagged, and standardisation makes the same data learnable.

scikit-learn's breast-cancer data as shipped has features from 0.001 to 4,000: an FFNet on the raw
values collapses to the majority class, which must not pass as a plain success.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from jupyter_fed import SessionTaskGroup

FEATURES = [f"f{i}" for i in range(30)]


@pytest.fixture(scope="module")
def cancer(federation, data_root: Path):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [*FEATURES, "y"]
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    names = {}
    for i, (runner, proc) in enumerate(sorted(federation.processes.items())):
        name = f"cancer{i}_" + uuid.uuid4().hex[:6]
        frame.iloc[i::2].to_parquet(data_root / f"{name}.parquet")
        with proc.http() as admin:
            assert admin.post("/v1/datasets", json={"name": name, "path": f"{name}.parquet"}
                              ).status_code == 201
        names[runner] = name
    yield names
    for runner, name in names.items():
        with federation.processes[runner].http() as admin:
            admin.delete(f"/v1/datasets/{name}")


def _train(client, names, **extra):
    cfg = {"model": {"params": {"input_size": 30, "hidden_layer_sizes": [6, 6, 6],
                                "output_size": 2}},
           "optimizer": {"name": "SGD", "params": {"learning_rate": 0.2}}, "seed": 1, **extra}
    session = client.create_fl_session(name="cancer", min_num_clients=2, num_rounds=5,
                                       model_config=cfg,
                                       data_config={"predictors": FEATURES, "target": "y"}).start()
    group = SessionTaskGroup(session)
    for runner, name in names.items():
        group.add_task(client.task_builder().hfl(train_dataset_name=name, runner=runner))
    assert group.start().wait(180, 0.5) is True
    return session


def test_unscaled_features_collapse_and_the_session_says_so(client, cancer) -> None:
    session = _train(client, cancer, normalize=False)

    warnings = session.info()["warnings"]

    assert session.status() == "completed"
    assert any("predicts one class for every test row" in w for w in warnings), warnings
    assert any("normalize: true" in w for w in warnings)
    logged = [r["message"] for r in session.logs() if r["level"] == "warning"]
    assert set(warnings) <= set(logged)


def test_standardised_features_learn_and_raise_no_warning(client, cancer) -> None:
    session = _train(client, cancer)

    final = session.metrics().as_dict()["federated_metrics"][-1]

    assert session.info()["warnings"] == []
    assert final["roc_auc"] > 0.95
    model = session.model()
    assert set(model.weights) >= {"standardize.mean", "standardize.scale"}
    # the model takes raw features: its standardisation is the pooled training rows' moments
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer().data
    assert abs(model.weights["standardize.mean"][0] - raw[:, 0].mean()) < 1e-3
