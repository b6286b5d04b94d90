"""SplitNN through real runners and the real engine, after a real record linkage.

Two runners hold vertically split data: ``ra`` the first features and ids, ``rb`` the rest, the
ids (written in lower case) and the label ``y``; 90% of each party's people are the other's too.
A small recording proxy sits between the coordinator and the passive runner, so the tests can
read every request body that party was sent (no component of ours is replaced).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from vertical_support import Recorder, link, recorded_client, vertical_federation

from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.errors import ConfigError, FedError, SessionFailed

A_COLS = [f"x{i}" for i in range(8)]
B_COLS = [f"x{i}" for i in range(8, 15)]
TOLERANCE = 0.02
"""SplitNN's test ROC AUC may trail the same network trained centrally on the joined rows by this
much (the issue's target; the benchmark reports the figures)."""


@pytest.fixture(scope="module")
def vfed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    with vertical_federation(tmp_path_factory.mktemp("vfl-data"),
                             tmp_path_factory.mktemp("vfl-runners"), 2400, 800) as fed:
        yield fed


@pytest.fixture(scope="module")
def recorder(vfed: LocalFederation) -> Recorder:
    return Recorder(vfed.processes["ra"].port)


@pytest.fixture(scope="module")
def vclient(vfed: LocalFederation, recorder: Recorder, tmp_path_factory) -> Iterator[object]:
    with recorded_client(vfed, recorder, tmp_path_factory.mktemp("vfl-coord")) as c:
        yield c


@pytest.fixture(scope="module")
def linked(vclient) -> object:
    return link(vclient)


def configs(hidden: int = 16, emb: int = 8, **extra) -> tuple[dict, dict]:
    model = {"strategy": {"name": "SplitNN"},
             "model": {"feature_models": {
                 "a": {"params": {"input_size": len(A_COLS), "hidden_layer_sizes": [hidden],
                                  "output_size": emb}},
                 "b": {"params": {"input_size": len(B_COLS), "hidden_layer_sizes": [hidden],
                                  "output_size": emb}}},
                 "label_model": {"params": {"hidden_layer_sizes": [hidden], "output_size": 2}}},
             "ml_task": {"type": "classification"},
             "optimizer": {"name": "Adam", "params": {"learning_rate": 0.01}},
             "seed": 3, **extra}
    data = {"a": {"label_client": False, "predictors": A_COLS, "target": None},
            "b": {"label_client": True, "predictors": B_COLS, "target": "y"}}
    return model, data


def train(client, prl_id: str, rounds: int = 4, batch_size: int = 64, **extra):
    model, data = configs(**extra)
    session = client.create_vfl_session("vfl", prl_session_id=prl_id, vfl_mode="train",
                                        num_rounds=rounds, package_name="iai_ffnet",
                                        data_config=data, model_config=model).start()
    tb = client.task_builder()
    (SessionTaskGroup(session)
     .add_task(tb.vfl_train("ra/ra_train", "ra_test", batch_size, client_name="a"))
     .add_task(tb.vfl_train("rb/rb_train", "rb_test", batch_size, client_name="b"))
     .start().wait(180))
    return session


def joined(vfed: LocalFederation, role: str) -> pd.DataFrame:
    a = pd.read_parquet(vfed.data_root / f"ra_{role}.parquet")
    b = pd.read_parquet(vfed.data_root / f"rb_{role}.parquet")
    a["patient_id"] = a["patient_id"].str.lower()
    return a.merge(b, on="patient_id")


def test_splitnn_reaches_the_central_auc_and_predicts_in_aligned_order(
        vclient, vfed, linked, tmp_path) -> None:
    from jupyter_fed.packages.splitnn.baseline import train_central

    started = time.perf_counter()
    session = train(vclient, linked.id)
    seconds = time.perf_counter() - started
    model, data = configs()
    tr, te = joined(vfed, "train"), joined(vfed, "test")
    central = train_central(model, data, {"a": tr[A_COLS].to_numpy(), "b": tr[B_COLS].to_numpy()},
                            tr["y"].to_numpy(), {"a": te[A_COLS].to_numpy(),
                                                 "b": te[B_COLS].to_numpy()},
                            te["y"].to_numpy(), epochs=4, batch_size=64)

    final = session.metrics().as_dict()["federated_metrics"][-1]
    print(f"splitnn {final['roc_auc']:.4f} in {seconds:.1f} s vs central "
          f"{central['roc_auc']:.4f} in {central['seconds']:.1f} s")
    assert final["roc_auc"] >= central["roc_auc"] - TOLERANCE

    out = vfed.data_root / "predictions" / f"{session.id}.csv"
    predict = vclient.create_vfl_session("predict", prl_session_id=linked.id, vfl_mode="predict",
                                         training_session_id=session.id).start()
    tb = vclient.task_builder()
    (SessionTaskGroup(predict)
     .add_task(tb.vfl_predict("ra/ra_test", 256, client_name="a"))
     .add_task(tb.vfl_predict("rb/rb_test", 256, client_name="b", storage_path=str(out),
                              raw_output=True))
     .start().wait(120))

    result = predict.prediction_result()
    assert result == {str(out): str(out)} and result.readable
    frame = result.as_frame()
    assert list(frame.columns) == ["patient_id", "probability_0", "probability_1"]
    assert len(frame) == len(te) == linked.results().n_overlapped["test"]
    # aligned order = the order the label party's aligned rows have: its own ids, each once
    assert frame["patient_id"].is_unique and set(frame["patient_id"]) == set(te["patient_id"])
    labels = te.set_index("patient_id").loc[frame["patient_id"], "y"].to_numpy()
    from jupyter_fed.packages import binary_auc

    assert abs(binary_auc(labels, frame["probability_1"].to_numpy()) - final["roc_auc"]) < 1e-6


def test_the_passive_party_is_never_sent_labels(vclient, vfed, linked, recorder) -> None:
    with recorder.lock:
        recorder.sent.clear()
    session = train(vclient, linked.id, rounds=2)
    assert session.status() == "completed"

    sent = [t for t in recorder.tensors() if t]  # the first exchange carries no array
    assert sent, "the passive party received gradients"
    assert {name for t in sent for name in t} == {"grad"}  # nothing else, and never 'y'
    assert all(t["grad"].ndim == 2 and t["grad"].shape[1] == 8 for t in sent)
    y = joined(vfed, "train")["y"].to_numpy()
    with recorder.lock:
        raw = bytes(recorder.sent)
    specs = [s for s in re.findall(rb'"params":\{.*?\}\}?,"', raw)]
    assert specs and not any(b'"y":[' in s or b'"labels"' in s for s in specs)
    # no array the passive party got is the label column (in any order of its rows)
    for t in sent:
        g = t["grad"]
        if len(g) == len(y):
            assert not any(np.array_equal(np.sort(g[:, j]), np.sort(y.astype(g.dtype)))
                           for j in range(g.shape[1]))


@pytest.mark.parametrize(("change", "field"), [
    (lambda m, d: d["b"].update(label_client=False, target=None), "data_config.clients"),
    (lambda m, d: d["a"].update(label_client=True, target="x9"), "data_config.clients"),
    (lambda m, d: d["a"].update(target="x9"), "data_config.clients.a"),
    (lambda m, d: m.update(model={**m["model"], "feature_models": {
        "a": m["model"]["feature_models"]["a"]}}), "model_config.model.feature_models"),
])
def test_bad_configs_name_the_field(vclient, linked, change, field) -> None:
    model, data = configs()
    change(model, data)

    with pytest.raises(ConfigError) as err:
        vclient.create_vfl_session("bad", prl_session_id=linked.id, data_config=data,
                                   model_config=model)

    assert any(d["field"].startswith(field) for d in err.value.details), err.value.details


def test_unknown_prl_session_and_changed_dataset_are_refused(vclient, vfed, linked) -> None:
    model, data = configs()
    with pytest.raises(ConfigError) as err:
        vclient.create_vfl_session("bad", prl_session_id="0123456789", data_config=data,
                                   model_config=model)
    assert err.value.details[0]["field"] == "model_config.prl_session_id"

    import os

    path = vfed.data_root / "ra_test.parquet"
    original, st = path.read_bytes(), path.stat()
    pd.read_parquet(path).iloc[::-1].to_parquet(path, index=False)  # same rows, another order
    try:
        with pytest.raises(FedError, match="'ra_test' changed since record-linkage session"):
            train(vclient, linked.id, rounds=1)
    finally:  # the very file again, so the other tests' linkage still holds
        path.write_bytes(original)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_federate_splitnn_cell_trains_from_a_yaml_body(vclient, linked, capsys) -> None:
    # The process-wide test shell other tests share: a second singleton class would clash.
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.user_ns["vclient"] = vclient
    shell.run_line_magic("load_ext", "jupyter_fed")
    shell.run_line_magic("fed", "use vclient")

    shell.run_cell_magic("federate", "splitnn -o vfl", (
        f"prl_session_id: {linked.id}\n"
        "rounds: 2\n"
        "exchange_batches: 16\n"
        "optimizer: {name: Adam, params: {learning_rate: 0.01}}\n"
        "clients:\n"
        f"  a: {{train: ra/ra_train, test: ra_test, predictors: [{', '.join(A_COLS)}], "
        "batch_size: 64}\n"
        f"  b: {{train: rb/rb_train, test: rb_test, predictors: [{', '.join(B_COLS)}], "
        "label_client: true, target: y, batch_size: 64}\n"
        "model:\n"
        "  feature_models:\n"
        "    a: {params: {input_size: 8, output_size: 4}}\n"
        "    b: {params: {input_size: 7, output_size: 4}}\n"
        "  label_model: {params: {hidden_layer_sizes: [8], output_size: 2}}\n"))

    session = shell.user_ns["vfl"]
    assert session.status() == "completed"
    assert len(session.metrics().as_dict()["federated_metrics"]) == 3
    assert "label party b" in capsys.readouterr().out
    shell.run_line_magic("unload_ext", "jupyter_fed")
    from jupyter_fed.magics._client import reset_client

    reset_client()


def test_differential_privacy_noises_the_exchanges_charges_the_ledger_and_keeps_the_head(
        vclient, vfed, linked) -> None:
    session = train(vclient, linked.id, rounds=2,
                    differential_privacy_params={"epsilon": 8.0, "delta": 1e-6,
                                                 "embedding_clip": 1.0, "gradient_clip": 0.05})

    assert session.status() == "completed"
    model = session.model()
    assert not model.head_released  # trained on exact labels: it stays at the label party
    for runner, dataset in (("ra", "ra_train"), ("rb", "rb_train")):
        with vfed.processes[runner].http() as admin:
            spent = admin.get("/v1/budget").json()
        rows = [r for r in (spent if isinstance(spent, list) else spent.get("budget", []))
                if dataset in str(r)]
        assert rows and sum(float(r.get("spent", r.get("epsilon", 0))) for r in rows) \
            == pytest.approx(8.0)


def test_a_require_dp_dataset_refuses_splitnn(vclient, vfed, linked) -> None:
    """Embeddings are per-row vectors: a dataset that releases only DP results refuses the
    session's first step at its runner, and the session fails saying so."""
    proc = vfed.processes["ra"]
    with proc.http() as admin:
        policy = admin.get("/v1/datasets/ra_train/policy").json()
        assert admin.put("/v1/datasets/ra_train/policy",
                         json={**policy, "require_dp": True}).status_code == 200
    try:
        with pytest.raises(SessionFailed, match="only allows differentially private steps"):
            train(vclient, linked.id, rounds=1)
    finally:
        with proc.http() as admin:
            admin.put("/v1/datasets/ra_train/policy", json=policy)
