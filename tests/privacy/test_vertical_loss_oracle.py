"""Attack #5 against the vertical packages: the label party as a loss oracle.

In a vertical session the label party measures the model on its own test rows, with every other
party's contribution (vfl_glm's partial linear predictors, splitnn's embeddings, vfl_gbm's
left/right bits) relayed by the coordinator — which a hostile principal replaces at will, row by
row. The vertical packages used to ignore the runner's evaluation allowance: they declared no
evaluation (vfl_glm and vfl_gbm had no ``privacy_cost`` at all) or declared one and then
answered exactly whatever the runner granted (splitnn), and every answer carried the exact
Shapley values of the parties, each one more exact validation loss per coalition.

What a principal got before the fix, posting steps straight to the label party's runner (as the
coordinator it controls would), with one ``start`` and no training round at all:

* vfl_glm: one ``label`` step per question with ``eval`` and ``final`` set and a crafted
  ``test_u`` (+20 on one aligned test row, 0 elsewhere) against an all-zero baseline: the sign of
  the exact loss difference gave that person's label — every row tried, no budget spent;
* splitnn: as many exact ``head`` evaluations (loss, accuracy, ROC AUC, influence) of crafted
  embeddings in one round as it asked for;
* vfl_gbm: a ``grad``/``finish`` pair per tree, exact test metrics and influence each time,
  however many trees in one round;
* vfl_glm's feature importance of a finished session, re-run over every linked row and over
  all but one (``subsample`` ``n`` and ``n - 1``): ``n·s - (n-1)·s'`` is that person's
  ``|β_j z_j|``, for every column of the label party.

Now each of those steps declares its evaluation, and the step keeps to the grant: exact metrics
and influence only for the round's one exact evaluation; beyond it vfl_glm (like glm) reports
nothing, splitnn and vfl_gbm (like ffnet and gbm) loss and accuracy with noise and no influence,
and feature importance nothing — each charged ``evaluation_epsilon`` from the label party's
budget, or refused once it is spent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from attack import task_outcome

from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.wire import encode

A_COLS = [f"x{i}" for i in range(8)]
B_COLS = [f"x{i}" for i in range(8, 15)]
DATA = {"a": {"label_client": False, "predictors": A_COLS, "target": None},
        "b": {"label_client": True, "predictors": B_COLS, "target": "y"}}
LABEL_DATASETS = {"train": "rb_train", "test": "rb_test"}
GLM = {"strategy": {"name": "VflGlm", "params": {}},
       "model": {"a": {"params": {"input_size": len(A_COLS), "output_activation": "sigmoid"}},
                 "b": {"params": {"input_size": len(B_COLS), "output_activation": "sigmoid"}}},
       "ml_task": {"type": "logistic", "params": {}}, "seed": 23}
SPLITNN = {"strategy": {"name": "SplitNN"},
           "model": {"feature_models": {
               "a": {"params": {"input_size": len(A_COLS), "hidden_layer_sizes": [8],
                                "output_size": 4}},
               "b": {"params": {"input_size": len(B_COLS), "hidden_layer_sizes": [8],
                                "output_size": 4}}},
               "label_model": {"params": {"hidden_layer_sizes": [8], "output_size": 2}}},
           "ml_task": {"type": "classification"},
           "optimizer": {"name": "Adam", "params": {"learning_rate": 0.01}}, "seed": 3}
GBM = {"strategy": {"name": "VflGbm", "params": {}},
       "model": {"params": {"max_depth": 2, "learning_rate": 0.3, "max_bins": 8, "max_iter": 3,
                            "min_samples_leaf": 20}},
       "ml_task": {"type": "classification", "params": {}}, "seed": 3, "key_bits": 1024}


@pytest.fixture(scope="module")
def vfed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """Runners ``ra`` (x0…x7) and ``rb`` (x8…x14 and the label ``y``) of linked people."""
    from jupyter_fed.demo.data import write_vertical

    data = tmp_path_factory.mktemp("vloss-data")
    paths = write_vertical(data / "gen", rows=400, parties=2, overlap=0.9, test_rows=200)
    silos: dict[str, dict[str, Any]] = {"ra": {}, "rb": {}}
    for party, runner in (("party0", "ra"), ("party1", "rb")):
        for role in ("train", "test"):
            path = data / f"{runner}_{role}.parquet"
            path.write_bytes(paths[party][role].read_bytes())
            silos[runner][f"{runner}_{role}"] = {"path": path, "id_columns": ["patient_id"]}
    with LocalFederation(tmp_path_factory.mktemp("vloss-runners"), silos, data,
                         insecure_http=True) as fed:
        yield fed


class Attacker:
    """A model builder of its own (granted every dataset) that has linked ``ra`` and ``rb``."""

    def __init__(self, fed: LocalFederation, state: Path) -> None:
        import jupyter_fed
        from jupyter_fed import SessionTaskGroup

        self.fed = fed
        self.user = "p_" + uuid.uuid4().hex[:8]
        runners = [{"name": p.name, "url": p.url, "token": p.builder_token(self.user),
                    "fingerprint": p.fingerprint} for p in fed.processes.values()]
        self.token = {r["name"]: r["token"] for r in runners}
        self.client = jupyter_fed.connect(embedded=True, state_dir=state, runners=runners)
        ids = {"id_columns": ["patient_id"]}
        prl = self.client.create_prl_session("link", data_config={"clients": {"a": ids,
                                                                              "b": ids}}).start()
        tb = self.client.task_builder()
        (SessionTaskGroup(prl).add_task(tb.prl("ra/ra_train", "ra_test", client_name="a"))
         .add_task(tb.prl("rb/rb_train", "rb_test", client_name="b")).start().wait(120))
        self.prl = prl.id

    def train(self, name: str, package: str, model_config: dict[str, Any], timeout: float
              ) -> Any:
        """An honest two-party training session (``a`` features, ``b`` labels), run to its end."""
        from jupyter_fed import SessionTaskGroup

        session = self.client.create_vfl_session(
            name, prl_session_id=self.prl, vfl_mode="train", num_rounds=2,
            package_name=package, data_config=DATA, model_config=model_config).start()
        tb = self.client.task_builder()
        (SessionTaskGroup(session).add_task(tb.vfl_train("ra/ra_train", "ra_test", client_name="a"))
         .add_task(tb.vfl_train("rb/rb_train", "rb_test", client_name="b")).start().wait(timeout))
        return session

    def aligned(self, dataset: str) -> np.ndarray:
        """The label party's rows of ``dataset`` in aligned order (read here from the runner's
        files, to check the attack against)."""
        from jupyter_fed.packages.alignment import load_alignment

        proc = self.fed.processes["rb"]
        found = load_alignment(proc.home / "cache", self.user, self.prl, dataset)
        assert found is not None
        return found.rows

    def labels(self) -> np.ndarray:
        """What the attack is after: the label party's test labels, in aligned order."""
        y = pd.read_parquet(self.fed.data_root / "rb_test.parquet")["y"].to_numpy()
        return y[self.aligned("rb_test")]

    def step(self, package: str, step: str, session: str, rnd: int, params: dict[str, Any],
             tensors: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """One step at the label party's runner, as the principal's coordinator sends it."""
        spec = {"task_id": f"t-{uuid.uuid4().hex[:12]}", "session_id": session, "round": rnd,
                "package": package, "step": step, "datasets": LABEL_DATASETS,
                "params": {"data_config": DATA, "client": "b", **params}}
        with self.fed.processes["rb"].http(self.token["rb"], timeout=120) as http:
            return task_outcome(http, spec, encode(tensors) if tensors else None)

    def spent(self) -> float:
        with self.fed.processes["rb"].http(timeout=60) as admin:
            rows = admin.get("/v1/budget", params={"principal": self.user}).json()
        return sum(r["spent"] for r in rows)


@pytest.fixture()
def attacker(vfed: LocalFederation, tmp_path: Path) -> Iterator[Attacker]:
    a = Attacker(vfed, tmp_path / "coord")
    yield a
    a.client.close()


def outputs(found: dict[str, Any]) -> dict[str, Any]:
    assert found.get("status", {}).get("state") == "succeeded", found["texts"]
    return found["status"]["outputs"] or {}


def exact(out: dict[str, Any]) -> bool:
    """Exact metrics: present, and not the noisy kind (which names its epsilon)."""
    metrics = out.get("metrics") or {}
    return "test_loss" in metrics and "test_noisy_epsilon" not in metrics


def test_crafted_partial_predictors_no_longer_read_labels_off_vfl_glm(attacker) -> None:
    session = uuid.uuid4().hex[:12]
    model = {**GLM, "prl_session_id": attacker.prl, "influence_score": {"enable": True}}
    outputs(attacker.step("vfl_glm", "start", session, 0, {"model_config": model}))
    y = attacker.labels()
    rows = [0, 1, 2, 3]
    answers = []
    for exchange, row in enumerate([None, *rows], start=1):  # a baseline, then one per person
        u = np.zeros(len(y))
        if row is not None:
            u[row] = 20.0
        answers.append(outputs(attacker.step(
            "vfl_glm", "label", session, 1, {"model_config": model, "exchange": exchange,
                                             "eval": True, "final": True, "directions": {}},
            {"test_u/a": u})))

    # Before: five exact losses; L(row) < L(baseline) exactly when the row's label is 1.
    exact_answers = [a for a in answers if exact(a)]
    if len(exact_answers) == len(answers):
        base = answers[0]["metrics"]["test_loss"]
        guessed = [int(a["metrics"]["test_loss"] < base) for a in answers[1:]]
        pytest.fail(f"the label party answered {len(answers)} crafted evaluations exactly; "
                    f"labels guessed {guessed}, true {y[rows].astype(int).tolist()}")
    # Now: no exact answer outside a training round, no influence, each one charged.
    assert not exact_answers
    assert not any(a.get("influence") for a in answers)
    assert attacker.spent() == pytest.approx(len(answers))  # evaluation_epsilon 1 each


def test_vfl_glm_feature_importance_cannot_be_differenced_across_subsamples(attacker) -> None:
    fi = {"enable": True, "params": {"subsample": 100, "random_seed": 7}}
    model = {**GLM, "feature_importance_score": fi}
    session = attacker.train("fit", "vfl_glm", model, 120)
    assert session.feature_importance_scores().as_dict()["feature_importance_scores"]["b"]

    n = len(attacker.aligned("rb_train"))
    found = []  # the session's importance again, over every row and all but the last one
    for k, rnd in ((n, 3), (n - 1, 3), (n - 1, 4)):
        fi = {"enable": True, "params": {"subsample": k, "random_seed": 7}}
        found.append(outputs(attacker.step("vfl_glm", "importance", session.id, rnd, {
            "model_config": {**model, "prl_session_id": attacker.prl,
                             "feature_importance_score": fi}})))

    scores = [f.get("importance", {}).get("scores") or {} for f in found]
    if scores[0] and scores[1]:
        one = {c: round(n * scores[0][c] - (n - 1) * scores[1][c], 4) for c in B_COLS}
        pytest.fail(f"two exact importance releases differ by one person: |beta z| = {one}")
    assert not any(scores)  # the session had its exact release; these are withheld


def test_splitnn_answers_one_exact_evaluation_per_round(attacker) -> None:
    session = uuid.uuid4().hex[:12]
    model = {**SPLITNN, "prl_session_id": attacker.prl}
    base = {"model_config": model, "num_rounds": 1, "seed": 3, "batch_size": 32,
            "exchange_batches": 4}
    outputs(attacker.step("splitnn", "start", session, 0, base))
    n = len(attacker.labels())
    rng = np.random.default_rng(0)
    answers = [outputs(attacker.step("splitnn", "head", session, 1, {
        **base, "exchange": e, "eval": True, "new_epoch": True},
        {"test_emb/a": rng.normal(0, 3, (n, 4)).astype(np.float32)})) for e in range(1, 5)]

    exact_answers = [a for a in answers if exact(a)]
    assert len(exact_answers) <= 1, f"{len(exact_answers)} exact evaluations in one round"
    assert not exact_answers  # and this session never trained
    assert all("test_roc_auc" not in a["metrics"] and not a.get("influence") for a in answers)
    assert attacker.spent() == pytest.approx(len(answers))


def test_vfl_gbm_answers_one_exact_evaluation_per_tree(attacker) -> None:
    session = uuid.uuid4().hex[:12]
    model = {**GBM, "prl_session_id": attacker.prl}
    n_bins = [9] * (len(A_COLS) + len(B_COLS))
    start = outputs(attacker.step("vfl_gbm", "start", session, 0, {"model_config": model}))
    rows = start["rows"]["train"]
    answers, seq = [], 0
    for tree in range(3):  # three trees, all called round 1
        seq += 1
        outputs(attacker.step("vfl_gbm", "grad", session, 1, {
            "model_config": model, "seq": seq, "tree": tree, "n_bins": n_bins}))
        seq += 1
        answers.append(outputs(attacker.step("vfl_gbm", "finish", session, 1, {
            "model_config": model, "seq": seq, "tree": tree},
            {"node": np.zeros(rows, np.int32)})))

    exact_answers = [a for a in answers if exact(a)]
    assert len(exact_answers) == 1, f"{len(exact_answers)} exact evaluations in one round"
    assert exact(answers[0]) and answers[0].get("influence")  # the round's own, as before
    assert all("test_noisy_epsilon" in a["metrics"] and "train_noisy_epsilon" in a["train"]
               and "test_roc_auc" not in a["metrics"] and not a.get("influence")
               for a in answers[1:])
    assert attacker.spent() == pytest.approx(2 * (len(answers) - 1))  # test and train files
