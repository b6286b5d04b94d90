"""vfl_gbm's dataset influence and feature importance through real runners.

The generated vertical data puts all the signal in ``ra``'s columns (``x0…x7``) and only noise in
``rb``'s (``x8…x14``), while ``rb`` holds the label; the ``_swap`` datasets turn this round
(``ra_swap``: pure noise, ``rb_swap``: the label and the signal). A recording proxy in front of
``ra`` (the passive party in both orders) keeps every byte it is sent. The Paillier key is 1024
bits and the data small, to keep the test short.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from vertical_support import (
    NOISE_A,
    Recorder,
    add_swapped,
    link,
    recorded_client,
    vertical_federation,
)

from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.errors import ConfigError

SIGNAL = [f"x{i}" for i in range(8)]
NOISE_B = [f"x{i}" for i in range(8, 15)]
PARAMS = {"max_depth": 3, "learning_rate": 0.3, "max_bins": 16, "max_iter": 4,
          "min_samples_leaf": 20}
GRADIENT_EXCHANGE = {"ct", "pub_n", "node", "req"}
"""What training sends the passive party (``test_vfl_gbm``): influence adds nothing to it."""


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    with vertical_federation(tmp_path_factory.mktemp("gval-data"),
                             tmp_path_factory.mktemp("gval-runners"), 700, 400,
                             extra=add_swapped) as f:
        yield f


@pytest.fixture(scope="module")
def recorder(fed: LocalFederation) -> Recorder:
    return Recorder(fed.processes["ra"].port)


@pytest.fixture(scope="module")
def client(fed: LocalFederation, recorder: Recorder, tmp_path_factory) -> Iterator[Any]:
    with recorded_client(fed, recorder, tmp_path_factory.mktemp("gval-coord")) as c:
        yield c


@pytest.fixture(scope="module")
def linked(client) -> Any:
    return link(client)


@pytest.fixture(scope="module")
def linked_swap(client) -> Any:
    return link(client, "_swap")


def configs(a_cols: list[str], b_cols: list[str], **extra: Any) -> tuple[dict, dict]:
    model = {"strategy": {"name": "VflGbm", "params": {}}, "model": {"params": PARAMS},
             "ml_task": {"type": "classification", "params": {}}, "seed": 3, "key_bits": 1024,
             **extra}
    data = {"a": {"label_client": False, "predictors": a_cols, "target": None},
            "b": {"label_client": True, "predictors": b_cols, "target": "y"}}
    return model, data


def run(client, recorder: Recorder, prl_id: str, configs: tuple[dict, dict], suffix: str = ""
        ) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """A finished session and every tensor payload the passive party ``a`` was sent."""
    with recorder.lock:
        recorder.sent.clear()
    model, data = configs
    session = client.create_vfl_session("gval", prl_session_id=prl_id, vfl_mode="train",
                                        num_rounds=PARAMS["max_iter"], package_name="iai_gbm",
                                        data_config=data, model_config=model).start()
    tb = client.task_builder()
    (SessionTaskGroup(session)
     .add_task(tb.vfl_train(f"ra/ra{suffix}_train", f"ra{suffix}_test", client_name="a"))
     .add_task(tb.vfl_train(f"rb/rb{suffix}_train", f"rb{suffix}_test", client_name="b"))
     .start().wait(300))
    assert session.status() == "completed"
    return session, [t for t in recorder.tensors() if t]


def check_influence(session, signal: str, noise: str) -> dict[str, float]:
    shares = session.influence_scores().as_dict()["influence_shares"]
    print(f"vfl_gbm influence shares {shares}")
    assert set(shares) == {"a", "b"}
    assert shares[signal] > 0.9, shares
    assert abs(shares[noise]) < 0.1, shares
    assert sum(shares.values()) == pytest.approx(1.0)
    every = session.influence_scores(all_metrics=True).as_dict()
    assert every["rounds"] == list(range(PARAMS["max_iter"]))  # one per tree
    metrics = session.metrics().as_dict()
    assert metrics["client_metrics"][-1][noise]["influence_score"] == \
        every["influence_scores"][noise][-1]
    last = metrics["client_metrics"][-1]  # the Shapley values add up to the model's gain
    assert "influence_score" not in metrics["federated_metrics"][-1]
    assert last[signal]["influence_score"] + last[noise]["influence_score"] > 0
    return shares


@pytest.fixture(scope="module")
def explained(client, fed, recorder, linked) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """Signal at the passive party; influence (by default) and feature importance, with the
    label party's policy releasing per-row SHAP values and the passive party's not."""
    proc = fed.processes["rb"]
    with proc.http() as admin:
        policy = admin.get("/v1/datasets/rb_train/policy").json()
        assert admin.put("/v1/datasets/rb_train/policy",
                         json={**policy, "release_shap_details": True}).status_code == 200
    try:
        return run(client, recorder, linked.id, configs(SIGNAL, NOISE_B, feature_importance_score={
            "enable": True, "params": {"subsample": 80, "random_seed": 5}}))
    finally:
        with proc.http() as admin:
            admin.put("/v1/datasets/rb_train/policy", json=policy)


def test_influence_goes_to_the_passive_party_holding_the_signal(explained) -> None:
    session, _ = explained
    check_influence(session, signal="a", noise="b")


def test_influence_of_a_passive_noise_provider_is_near_zero_and_costs_no_exchange(
        client, recorder, linked_swap) -> None:
    session, sent = run(client, recorder, linked_swap.id, configs(NOISE_A, SIGNAL),
                        suffix="_swap")

    check_influence(session, signal="b", noise="a")
    names = {n for t in sent for n in t}
    assert names <= GRADIENT_EXCHANGE, names


def test_feature_importance_ranks_the_informative_columns_first(explained) -> None:
    session, _ = explained
    found = session.feature_importance_scores()
    out = found.as_dict()
    scores = out["feature_importance_scores"]
    print(f"vfl_gbm importance {found.ranking(6)}")
    assert set(scores) == {"a", "b"} and set(scores["a"]) == set(SIGNAL)
    best_noise = max(scores["b"].values())
    assert all(scores["a"][c] > best_noise for c in ("x0", "x1")), scores
    assert {f for _, f, _ in found.ranking()[:2]} == {"x0", "x1"}
    assert out["rows"] == 80 and out["outputs"] == ["raw score (log-odds of class 1)"]


def test_per_row_shap_values_leave_only_where_the_policy_allows(explained) -> None:
    session, _ = explained
    found = session.feature_importance_scores()
    out = found.as_dict()
    details = out["feature_importance_details"]
    assert len(details) == 1 and set(details[0]) == {"b"}  # a's runner keeps its rows' values
    assert set(out["feature_importance_details_withheld"]) == {"a"}
    frame = details[0]["b"]
    assert list(frame.columns) == NOISE_B and len(frame) == 80
    assert frame.abs().mean().to_dict() == pytest.approx(out["feature_importance_scores"]["b"],
                                                         rel=1e-5)
    assert not any(k.startswith("shap/a") for k in session.model().tensors)


def test_the_passive_party_is_sent_only_raw_scores_of_its_perturbed_rows(explained) -> None:
    """Beyond training's ciphertexts and tree positions, feature importance sends the passive
    party the raw scores of its own perturbed rows, one number per row, and nothing else."""
    _session, sent = explained
    names = {n for t in sent for n in t}
    assert names <= GRADIENT_EXCHANGE | {"out"}, names
    outs = [t["out"] for t in sent if "out" in t]
    assert len(outs) == 1 and outs[0].ndim == 2 and outs[0].shape[1] == 1
    assert outs[0].dtype == np.float64 and len(outs[0]) >= 80 * 2 * len(SIGNAL)


@pytest.mark.parametrize(("section", "field"), [
    ({"influence_score": {"params": {"rel_thresh": 0}}},
     "model_config.influence_score.params.rel_thresh"),
    ({"influence_score": {"enabled": True}}, "model_config.influence_score.enabled"),
    ({"feature_importance_score": {"params": {"subsample": 0}}},
     "model_config.feature_importance_score.params.subsample"),
    ({"feature_importance_score": {"enable": True, "params": {"max_evals": 10}}},
     "model_config.feature_importance_score.params.max_evals"),
])
def test_bad_valuation_configs_name_the_field(client, linked, section, field) -> None:
    model, data = configs(SIGNAL, NOISE_B, **section)

    with pytest.raises(ConfigError) as err:
        client.create_vfl_session("bad", prl_session_id=linked.id, package_name="iai_gbm",
                                  data_config=data, model_config=model)

    assert [d["field"] for d in err.value.details] == [field], err.value.details
