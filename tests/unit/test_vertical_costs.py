"""The vertical packages declare their training rounds and evaluations (what the runner's ledger
holds to one exact answer per round), and spend nothing."""

from __future__ import annotations

from jupyter_fed.packages import get_package
from jupyter_fed.privacy.accounting import DatasetFacts

FACTS = {"train": DatasetFacts(1000, 1e-6), "test": DatasetFacts(500, 1e-6)}


def _cost(package: str, step: str, **params):
    return get_package(package).privacy_cost_of(step, params, FACTS)


def test_vfl_glm_declares_its_rounds_and_what_it_measures() -> None:
    # Execute
    round_1 = _cost("vfl_glm", "label", exchange=1)
    round_2 = _cost("vfl_glm", "label", exchange=2, eval=True)
    final = _cost("vfl_glm", "label", exchange=3, eval=True, final=True)
    passive = _cost("vfl_glm", "passive", exchange=2, apply=True)
    shap = _cost("vfl_glm", "importance")

    # Assert
    assert round_1["train"].trains and round_1["train"].evaluation
    assert not round_1["test"].evaluation
    assert round_2["test"].evaluation and round_2["test"].party_model
    assert not final["train"].trains and not final["train"].evaluation and final["test"].evaluation
    assert passive["train"].trains and not passive["train"].evaluation
    assert shap["train"].evaluation and not shap["train"].trains
    assert not any(c.spends for c in (*round_2.values(), *final.values(), *shap.values()))
    assert not _cost("vfl_glm", "passive")["train"].trains  # a prediction session's


def test_vfl_gbm_declares_every_tree_and_its_measurements() -> None:
    # Execute
    grow = {s: _cost("vfl_gbm", s) for s in ("grad", "split", "hist", "route", "finish")}
    explain = {s: _cost("vfl_gbm", s) for s in ("explain_bits", "explain_model",
                                                  "explain_finish")}

    # Assert
    assert all(c["train"].trains for c in grow.values())
    assert grow["finish"]["train"].evaluation and grow["finish"]["test"].evaluation
    assert not any(grow[s]["test"].evaluation for s in ("grad", "split", "hist", "route"))
    assert not explain["explain_bits"]["train"].evaluation
    assert explain["explain_model"]["train"].evaluation
    assert explain["explain_finish"]["train"].evaluation
    assert not _cost("vfl_gbm", "start")["train"].trains


def test_splitnn_declares_its_training_loss_and_shap_summaries_without_dp() -> None:
    # Prepare
    base = {"model_config": {"vfl_mode": "train"}, "num_rounds": 2}

    # Execute
    evaluated = _cost("splitnn", "head", **base, eval=True, train=[1, 0], new_epoch=True)
    later = _cost("splitnn", "head", **base, train=[1, 1])
    last = _cost("splitnn", "head", **base, eval=True, final=True)
    shap = [_cost("splitnn", s, **base) for s in ("explain_head", "explain_finish")]

    # Assert
    assert evaluated["train"].trains and evaluated["train"].evaluation
    assert evaluated["test"].evaluation and evaluated["test"].party_model
    assert later["train"].trains and not later["train"].evaluation
    assert not last["train"].trains and last["test"].evaluation
    assert all(c["train"].evaluation and not c["train"].trains for c in shap)
    assert not _cost("splitnn", "explain_embed", **base)["train"].evaluation
