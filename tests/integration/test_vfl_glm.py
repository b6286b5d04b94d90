"""VFL-GLM through real runners and the real engine, after a real record linkage.

Two runners hold vertically split data: ``ra`` the first features and ids, ``rb`` the rest, the
ids (written in lower case) and the label ``y``; 90% of each party's people are the other's too.
They also hold scikit-learn's breast-cancer data split by columns (``ra`` the first 15, ``rb``
the last 15 and the diagnosis). A small recording proxy sits between the coordinator and the
passive runner, so the tests can read every request body that party was sent (no component of
ours is replaced).
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
BC_A = [f"f{i}" for i in range(15)]
BC_B = [f"f{i}" for i in range(15, 30)]
COEF_TOLERANCE = 1e-3
"""The issue's target: every coefficient within this of the pooled unpenalised fit."""
AUC_TOLERANCE = 0.005
"""... or, where the pooled fit does not exist (separable data), the same test ROC AUC."""


def _breast_cancer(root, silos) -> None:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    ids = np.array([f"B{i:04d}" for i in range(len(y))])
    test = np.random.default_rng(5).random(len(y)) < 0.3
    for role, rows in (("train", ~test), ("test", test)):
        for runner, cols in (("ra", range(15)), ("rb", range(15, 30))):
            frame = pd.DataFrame({"patient_id": ids[rows]})
            for j in cols:
                frame[f"f{j}"] = x[rows, j]
            if runner == "rb":
                frame["y"] = y[rows]
            frame = frame.sample(frac=1.0, random_state=len(frame) + len(cols))  # own order
            path = root / f"{runner}_bc_{role}.parquet"
            frame.to_parquet(path, index=False)
            silos[runner][f"{runner}_bc_{role}"] = {"path": path, "id_columns": ["patient_id"]}


@pytest.fixture(scope="module")
def vfed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    with vertical_federation(tmp_path_factory.mktemp("vglm-data"),
                             tmp_path_factory.mktemp("vglm-runners"), 2400, 800,
                             extra=_breast_cancer) as fed:
        yield fed


@pytest.fixture(scope="module")
def recorder(vfed: LocalFederation) -> Recorder:
    return Recorder(vfed.processes["ra"].port)


@pytest.fixture(scope="module")
def vclient(vfed: LocalFederation, recorder: Recorder, tmp_path_factory) -> Iterator[object]:
    with recorded_client(vfed, recorder, tmp_path_factory.mktemp("vglm-coord")) as c:
        yield c


@pytest.fixture(scope="module")
def linked(vclient) -> object:
    return link(vclient)


def configs(a_cols=A_COLS, b_cols=B_COLS, family: str = "logistic", **extra) -> tuple[dict, dict]:
    act = {"logistic": "sigmoid", "poisson": "exp", "normal": "identity"}[family]
    model = {"strategy": {"name": "VflGlm", "params": {}},
             "model": {"a": {"params": {"input_size": len(a_cols), "output_activation": act}},
                       "b": {"params": {"input_size": len(b_cols), "output_activation": act}}},
             "ml_task": {"type": family, "params": {}},
             "optimizer": {"name": "SGD", "params": {"learning_rate": 0.2, "momentum": 0.0}},
             "seed": 23, **extra}
    data = {"a": {"label_client": False, "predictors": list(a_cols), "target": None},
            "b": {"label_client": True, "predictors": list(b_cols), "target": "y"}}
    return model, data


def train(client, prl_id: str, rounds: int = 30, prefix: str = "", a_cols=A_COLS,
          b_cols=B_COLS, **extra):
    model, data = configs(a_cols, b_cols, **extra)
    session = client.create_vfl_session("vglm", prl_session_id=prl_id, vfl_mode="train",
                                        num_rounds=rounds, package_name="iai_glm",
                                        data_config=data, model_config=model).start()
    tb = client.task_builder()
    (SessionTaskGroup(session)
     .add_task(tb.vfl_train(f"ra/ra{prefix}_train", f"ra{prefix}_test", 1024, client_name="a"))
     .add_task(tb.vfl_train(f"rb/rb{prefix}_train", f"rb{prefix}_test", 1024, client_name="b"))
     .start().wait(180))
    return session


def joined(vfed: LocalFederation, role: str, prefix: str = "") -> pd.DataFrame:
    a = pd.read_parquet(vfed.data_root / f"ra{prefix}_{role}.parquet")
    b = pd.read_parquet(vfed.data_root / f"rb{prefix}_{role}.parquet")
    a["patient_id"] = a["patient_id"].str.lower()
    b["patient_id"] = b["patient_id"].str.lower()
    return a.merge(b, on="patient_id")


def test_vfl_glm_reaches_the_pooled_coefficients_and_predicts_in_aligned_order(
        vclient, vfed, linked) -> None:
    from jupyter_fed.packages.vfl_glm.baseline import fit_pooled

    started = time.perf_counter()
    session = train(vclient, linked.id, release_coefficients=True)
    seconds = time.perf_counter() - started
    tr, te = joined(vfed, "train"), joined(vfed, "test")
    pooled = fit_pooled(tr, A_COLS + B_COLS, "y", "logistic")
    model = session.model()
    got = model.coefficients()
    worst = max(abs(got[k] - pooled[k]) for k in pooled)
    history = session.metrics().as_dict()["federated_metrics"]
    print(f"vfl_glm: {len(history)} rounds in {seconds:.1f} s, max |coef - pooled| {worst:.2e}, "
          f"test AUC {history[-1]['roc_auc']:.4f}")
    assert worst < COEF_TOLERANCE
    assert "loss" in history[-1] and "accuracy" in history[-1]

    out = vfed.data_root / "predictions" / f"{session.id}.csv"
    predict = vclient.create_vfl_session("predict", prl_session_id=linked.id, vfl_mode="predict",
                                         training_session_id=session.id).start()  # its package
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
    assert frame["patient_id"].is_unique and set(frame["patient_id"]) == set(te["patient_id"])
    # aligned order: row i is the same person at both parties, so each row's probability is the
    # released model on *that* person's joined columns (a misalignment would break this)
    rows = te.set_index("patient_id").loc[frame["patient_id"]]
    eta = got["intercept"] + sum(rows[c].to_numpy() * got[c] for c in A_COLS + B_COLS)
    assert np.allclose(frame["probability_1"], 1 / (1 + np.exp(-eta)), atol=1e-9)
    from jupyter_fed.packages import binary_auc

    assert abs(binary_auc(rows["y"].to_numpy(), frame["probability_1"].to_numpy())
               - history[-1]["roc_auc"]) < 1e-9


def test_breast_cancer_by_columns_matches_the_pooled_auc(vclient, vfed) -> None:
    """The pooled unpenalised fit of this data does not exist (it separates the classes): the
    issue's alternative target, the same test ROC AUC within 0.005, applies."""
    from jupyter_fed.packages import binary_auc
    from jupyter_fed.packages.vfl_glm.baseline import fit_pooled

    prl = link(vclient, "_bc")
    session = train(vclient, prl.id, rounds=40, prefix="_bc", a_cols=BC_A, b_cols=BC_B)
    tr, te = joined(vfed, "train", "_bc"), joined(vfed, "test", "_bc")
    pooled = fit_pooled(tr, BC_A + BC_B, "y", "logistic")
    eta = pooled["intercept"] + sum(te[c].to_numpy() * pooled[c] for c in BC_A + BC_B)
    central = binary_auc(te["y"].to_numpy(), eta)
    final = session.metrics().as_dict()["federated_metrics"][-1]
    print(f"breast cancer: vfl_glm test AUC {final['roc_auc']:.4f}, pooled {central:.4f}")
    assert final["roc_auc"] >= central - AUC_TOLERANCE
    assert not session.model().coefficients_released  # the default: they stay at the parties


def test_the_passive_party_receives_only_ciphertexts_and_its_step(vclient, vfed, linked,
                                                                  recorder) -> None:
    with recorder.lock:
        recorder.sent.clear()
    session = train(vclient, linked.id, rounds=4)
    assert session.status() == "completed"

    sent = [t for t in recorder.tensors() if t]
    assert sent
    assert {name for t in sent for name in t} <= {"step", "grad/ct", "grad/ct_sizes"}
    assert sum("grad/ct" in t for t in sent) == 3  # one encrypted gradient per round but the last
    n = len(joined(vfed, "train"))
    for t in sent:
        # the step: one coefficient per direction the party offered (never per row)
        assert t["step"].ndim == 1 and len(t["step"]) < len(A_COLS)
        if "grad/ct" in t:  # serialised BFV ciphertexts: bytes, one blob per gradient
            assert t["grad/ct"].dtype == np.uint8 and len(t["grad/ct_sizes"]) == 1
            assert t["grad/ct"].size > 100_000  # a ciphertext, not a 8-value gradient
    with recorder.lock:
        raw = bytes(recorder.sent)
    # no JSON parameter carries labels or residuals: every number list is short
    for m in re.finditer(rb'"params":(\{.*?\})', raw):
        assert b'"y"' not in m.group(1) or b'"target": "y"' in m.group(1) \
            or b'"target":"y"' in m.group(1)
    assert not any(len(lst.split(b",")) >= n // 2 for lst in re.findall(rb"\[([-0-9., e]*)\]",
                                                                        raw))


@pytest.mark.parametrize(("change", "field"), [
    (lambda m, d: d["b"].update(label_client=False, target=None), "data_config.clients"),
    (lambda m, d: d["a"].update(label_client=True, target="x9"), "data_config.clients"),
    (lambda m, d: d["a"].update(target="x9"), "data_config.clients.a"),
    (lambda m, d: m["model"].pop("a"), "model_config.model.a"),
    (lambda m, d: m["model"]["a"]["params"].update(input_size=3),
     "model_config.model.a.params.input_size"),
    (lambda m, d: m["model"]["b"]["params"].update(output_activation="exp"),
     "model_config.model.b.params.output_activation"),
    (lambda m, d: m["ml_task"].update(type="binomial"), "model_config.ml_task.type"),
    (lambda m, d: m.update(strategy={"name": "SplitNN"}), "model_config.strategy.name"),
])
def test_bad_configs_name_the_field(vclient, linked, change, field) -> None:
    model, data = configs()
    change(model, data)

    with pytest.raises(ConfigError) as err:
        vclient.create_vfl_session("bad", prl_session_id=linked.id, data_config=data,
                                   model_config=model, package_name="iai_glm")

    assert any(d["field"].startswith(field) for d in err.value.details), err.value.details


def test_predicting_with_a_splitnn_session_id_is_refused(vclient, linked) -> None:
    with pytest.raises((ConfigError, FedError)):
        vclient.create_vfl_session("p", prl_session_id=linked.id, vfl_mode="predict",
                                   package_name="iai_glm", training_session_id="0123456789")


def test_federate_vfl_glm_cell_fits_from_a_yaml_body(vclient, linked, capsys) -> None:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.user_ns["vclient"] = vclient
    shell.run_line_magic("load_ext", "jupyter_fed")
    shell.run_line_magic("fed", "use vclient")

    shell.run_cell_magic("federate", "vfl_glm -o vglm", (
        f"prl_session_id: {linked.id}\n"
        "rounds: 3\n"
        "ml_task: {type: logistic}\n"
        "clients:\n"
        f"  a: {{train: ra/ra_train, test: ra_test, predictors: [{', '.join(A_COLS)}]}}\n"
        f"  b: {{train: rb/rb_train, test: rb_test, predictors: [{', '.join(B_COLS)}], "
        "label_client: true, target: y}\n"
        "model:\n"
        "  a: {params: {input_size: 8}}\n"
        "  b: {params: {input_size: 7}}\n"))

    session = shell.user_ns["vglm"]
    assert session.status() == "completed"
    assert len(session.metrics().as_dict()["federated_metrics"]) == 3
    assert "label party b" in capsys.readouterr().out
    shell.run_line_magic("unload_ext", "jupyter_fed")
    from jupyter_fed.magics._client import reset_client

    reset_client()


def test_a_require_dp_dataset_refuses_vfl_glm(vclient, vfed, linked) -> None:
    """The label party sees per-row images of the passive party's features: a dataset that
    releases only DP results refuses the session's first step at its runner."""
    proc = vfed.processes["ra"]
    with proc.http() as admin:
        policy = admin.get("/v1/datasets/ra_train/policy").json()
        assert admin.put("/v1/datasets/ra_train/policy",
                         json={**policy, "require_dp": True}).status_code == 200
    try:
        with pytest.raises(SessionFailed, match="only allows differentially private"):
            train(vclient, linked.id, rounds=2)
    finally:
        with proc.http() as admin:
            admin.put("/v1/datasets/ra_train/policy", json=policy)
