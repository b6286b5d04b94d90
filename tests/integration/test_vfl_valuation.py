"""Dataset influence and feature importance of vertical sessions, through real runners.

The generated vertical data puts all the signal in ``ra``'s columns (``x0…x7``: the target is a
function of them) and only noise in ``rb``'s (``x8…x14``), while ``rb`` holds the label. The
``_swap`` datasets turn this round: ``ra_swap`` holds pure noise, ``rb_swap`` the label and the
signal columns of the people both parties hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import matplotlib
import numpy as np
import pytest
from vertical_support import NOISE_A, add_swapped, link, vertical_federation

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.errors import ConfigError

matplotlib.use("Agg")

SIGNAL = [f"x{i}" for i in range(8)]
NOISE_B = [f"x{i}" for i in range(8, 15)]


@pytest.fixture(scope="module")
def vfed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    with vertical_federation(tmp_path_factory.mktemp("val-data"),
                             tmp_path_factory.mktemp("val-runners"), 1200, 400,
                             extra=add_swapped) as fed:
        yield fed


@pytest.fixture(scope="module")
def vclient(vfed: LocalFederation, tmp_path_factory) -> Iterator[Any]:
    client = jupyter_fed.connect(embedded=True, state_dir=tmp_path_factory.mktemp("val-coord"),
                                 runners=vfed.runners)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def linked(vclient) -> Any:
    return link(vclient)


@pytest.fixture(scope="module")
def linked_swap(vclient) -> Any:
    return link(vclient, "_swap")


def splitnn_configs(a_cols: list[str], b_cols: list[str], **extra: Any) -> tuple[dict, dict]:
    model = {"strategy": {"name": "SplitNN"},
             "model": {"feature_models": {
                 "a": {"params": {"input_size": len(a_cols), "hidden_layer_sizes": [16],
                                  "output_size": 4}},
                 "b": {"params": {"input_size": len(b_cols), "hidden_layer_sizes": [16],
                                  "output_size": 4}}},
                 "label_model": {"params": {"hidden_layer_sizes": [8], "output_size": 2}}},
             "ml_task": {"type": "classification"},
             "optimizer": {"name": "Adam", "params": {"learning_rate": 0.01}},
             "seed": 3, **extra}
    data = {"a": {"label_client": False, "predictors": a_cols, "target": None},
            "b": {"label_client": True, "predictors": b_cols, "target": "y"}}
    return model, data


def glm_configs(a_cols: list[str], b_cols: list[str], **extra: Any) -> tuple[dict, dict]:
    model = {"strategy": {"name": "VflGlm", "params": {}},
             "model": {"a": {"params": {"input_size": len(a_cols),
                                        "output_activation": "sigmoid"}},
                       "b": {"params": {"input_size": len(b_cols),
                                        "output_activation": "sigmoid"}}},
             "ml_task": {"type": "logistic", "params": {}}, "seed": 23, **extra}
    data = {"a": {"label_client": False, "predictors": a_cols, "target": None},
            "b": {"label_client": True, "predictors": b_cols, "target": "y"}}
    return model, data


def run(client, prl_id: str, package: str, configs: tuple[dict, dict], rounds: int,
        suffix: str = "") -> Any:
    model, data = configs
    session = client.create_vfl_session(package, prl_session_id=prl_id, vfl_mode="train",
                                        num_rounds=rounds, package_name=package,
                                        data_config=data, model_config=model).start()
    tb = client.task_builder()
    (SessionTaskGroup(session)
     .add_task(tb.vfl_train(f"ra/ra{suffix}_train", f"ra{suffix}_test", 64, client_name="a"))
     .add_task(tb.vfl_train(f"rb/rb{suffix}_train", f"rb{suffix}_test", 64, client_name="b"))
     .start().wait(240))
    return session


def _check_influence(session, signal: str, noise: str) -> None:
    scores = session.influence_scores()
    shares = scores.as_dict()["influence_shares"]
    print(f"{session.package} shares {shares}")
    assert set(shares) == {"a", "b"}
    assert shares[signal] > 0.85, shares
    assert abs(shares[noise]) < 0.1, shares
    assert sum(shares.values()) == pytest.approx(1.0)

    every = session.influence_scores(all_metrics=True).as_dict()
    rounds = every["rounds"]
    assert rounds == list(range(len(rounds))) and len(rounds) >= 3
    assert all(len(v) == len(rounds) for v in every["influence_scores"].values())
    overall = scores.as_dict()["influence_scores"]
    assert overall[signal] == pytest.approx(np.mean(every["influence_scores"][signal][1:]))

    bars = scores.plot().axes[0].patches
    assert [round(b.get_height(), 9) for b in bars] == [round(shares[c], 9) for c in ("a", "b")]
    lines = scores.plot(per_round=True).axes[0].get_lines()
    drawn = {line.get_label(): list(line.get_ydata()) for line in lines
             if not line.get_label().startswith("_")}
    assert drawn == every["influence_scores"]

    metrics = session.metrics().as_dict()  # the same numbers, through the metrics API
    assert metrics["client_metrics"][-1][noise]["influence_score"] == \
        every["influence_scores"][noise][-1]
    assert "influence_score" not in metrics["federated_metrics"][-1]


def test_splitnn_influence_goes_to_the_party_holding_the_signal(vclient, linked) -> None:
    session = run(vclient, linked.id, "iai_ffnet", splitnn_configs(SIGNAL, NOISE_B), rounds=3)
    _check_influence(session, signal="a", noise="b")


def test_vfl_glm_influence_goes_to_the_party_holding_the_signal(vclient, linked) -> None:
    session = run(vclient, linked.id, "iai_glm", glm_configs(SIGNAL, NOISE_B), rounds=8)
    _check_influence(session, signal="a", noise="b")


def test_vfl_glm_influence_of_a_noise_provider_is_near_zero(vclient, linked_swap) -> None:
    session = run(vclient, linked_swap.id, "iai_glm", glm_configs(NOISE_A, SIGNAL), rounds=8,
                  suffix="_swap")
    _check_influence(session, signal="b", noise="a")


def test_influence_can_be_turned_off(vclient, linked) -> None:
    configs = glm_configs(SIGNAL, NOISE_B, influence_score={"enable": False})
    session = run(vclient, linked.id, "iai_glm", configs, rounds=3)

    with pytest.raises(ConfigError, match="no influence scores"):
        session.influence_scores()
    assert all("influence_score" not in m for per in
               session.metrics().as_dict()["client_metrics"] for m in per.values())


@pytest.mark.parametrize(("package", "section", "field"), [
    ("iai_ffnet", {"influence_score": {"params": {"rel_thresh": 0}}},
     "model_config.influence_score.params.rel_thresh"),
    ("iai_glm", {"influence_score": {"params": {"rel_thresh": 0.01, "tolerance": 1}}},
     "model_config.influence_score.params.tolerance"),
    ("iai_glm", {"influence_score": {"enabled": True}}, "model_config.influence_score.enabled"),
    ("iai_ffnet", {"feature_importance_score": {"params": {"subsample": 0}}},
     "model_config.feature_importance_score.params.subsample"),
    ("iai_glm", {"feature_importance_score": {"params": {"max_evals": 1}}},
     "model_config.feature_importance_score.params.max_evals"),
])
def test_bad_valuation_configs_name_the_field(vclient, linked, package, section, field) -> None:
    make = splitnn_configs if package == "iai_ffnet" else glm_configs
    model, data = make(SIGNAL, NOISE_B, **section)

    with pytest.raises(ConfigError) as err:
        vclient.create_vfl_session("bad", prl_session_id=linked.id, package_name=package,
                                   data_config=data, model_config=model)

    assert [d["field"] for d in err.value.details] == [field], err.value.details


INFORMATIVE_LINEAR = ["x0", "x1", "x6"]
"""The columns the target depends on linearly (the rest of x0…x7 enter through products, |x|
and sin, which a linear predictor barely uses)."""


def _check_ranking(found, informative: list[str], noise: list[str], owner: str,
                   noise_owner: str) -> None:
    scores = found.as_dict()["feature_importance_scores"]
    best_noise = max(scores[noise_owner][c] for c in noise)
    assert all(scores[owner][c] > best_noise for c in informative), scores
    ranked = [f for _, f, _ in found.ranking()]
    assert set(ranked[:len(informative)]) == set(informative), ranked


def test_vfl_glm_feature_importance_ranks_the_informative_columns_first(
        vclient, vfed, linked) -> None:
    configs = glm_configs(SIGNAL, NOISE_B, feature_importance_score={
        "enable": True, "params": {"subsample": 150, "random_seed": 5}})
    session = run(vclient, linked.id, "iai_glm", configs, rounds=8)

    found = session.feature_importance_scores()
    _check_ranking(found, INFORMATIVE_LINEAR, NOISE_B, "a", "b")
    out = found.as_dict()
    assert out["rows"] == 150 and set(out["feature_importance_scores"]["a"]) == set(SIGNAL)
    assert out["feature_importance_details"] == []  # no policy releases per-row values
    assert set(out["feature_importance_details_withheld"]) == {"a", "b"}
    bars = found.plot(topk=5).axes[0]
    assert len(bars.patches) == 5
    assert [t.get_text() for t in bars.get_yticklabels()][-1] == f"a: {found.ranking()[0][1]}"
    boxes = found.plot(style="box", topk=5)
    assert [ax.get_title() for ax in boxes.axes] == ["a", "b"]
    assert all(not ax.axison for ax in boxes.axes)  # both panels say the values are withheld


def test_per_row_shap_values_leave_only_where_the_policy_allows(vclient, vfed, linked) -> None:
    proc = vfed.processes["rb"]
    with proc.http() as admin:
        policy = admin.get("/v1/datasets/rb_train/policy").json()
        assert admin.put("/v1/datasets/rb_train/policy",
                         json={**policy, "release_shap_details": True}).status_code == 200
    try:
        configs = glm_configs(SIGNAL, NOISE_B, feature_importance_score={
            "enable": True, "params": {"subsample": 0.1}})
        session = run(vclient, linked.id, "iai_glm", configs, rounds=4)
    finally:
        with proc.http() as admin:
            admin.put("/v1/datasets/rb_train/policy", json=policy)

    found = session.feature_importance_scores()
    details = found.as_dict()["feature_importance_details"]
    assert len(details) == 1 and set(details[0]) == {"b"}  # a's runner keeps its rows' values
    frame = details[0]["b"]
    assert list(frame.columns) == NOISE_B and len(frame) == found.rows
    assert frame.abs().mean().to_dict() == pytest.approx(
        found.as_dict()["feature_importance_scores"]["b"], rel=1e-5)
    assert set(found.as_dict()["feature_importance_details_withheld"]) == {"a"}
    boxes = found.plot(style="box", topk=3)
    assert [ax.axison for ax in boxes.axes] == [False, True]


def test_feature_importance_over_too_few_rows_is_refused(vclient, linked) -> None:
    from jupyter_fed.errors import SessionFailed

    configs = glm_configs(SIGNAL, NOISE_B, feature_importance_score={
        "enable": True, "params": {"subsample": 5}})
    with pytest.raises(SessionFailed, match="below the dataset's minimum rows"):
        run(vclient, linked.id, "iai_glm", configs, rounds=2)


def test_splitnn_feature_importance_ranks_the_informative_columns_first(vclient, linked) -> None:
    """Each party perturbs only its own columns; the passive party gets back only the head's
    outputs for its perturbed embeddings."""
    configs = splitnn_configs(SIGNAL, NOISE_B, feature_importance_score={
        "enable": True, "params": {"subsample": 120, "random_seed": 7}})
    session = run(vclient, linked.id, "iai_ffnet", configs, rounds=3)

    found = session.feature_importance_scores()
    print(found.ranking(6))
    _check_ranking(found, ["x0", "x1"], NOISE_B, "a", "b")
    out = found.as_dict()
    assert out["outputs"] == ["probability of class 1"] and out["rows"] == 120
    assert out["feature_importance_details"] == []
    assert session.model().head_released  # the artefact still hands back the head


def test_splitnn_importance_with_too_few_evaluations_names_the_field(vclient, linked) -> None:
    model, data = splitnn_configs(SIGNAL, NOISE_B, feature_importance_score={
        "enable": True, "params": {"max_evals": 10}})
    with pytest.raises(ConfigError) as err:
        vclient.create_vfl_session("bad", prl_session_id=linked.id, package_name="iai_ffnet",
                                   data_config=data, model_config=model)
    assert [d["field"] for d in err.value.details] == [
        "model_config.feature_importance_score.params.max_evals"]
