"""A runner that sends poisoned updates: rejected by validation, or bounded by robust rules."""

from __future__ import annotations

import pytest
from sessions import dropped_by_round, start

from jupyter_fed.errors import SessionFailed


@pytest.mark.parametrize(("mode", "reason"), [
    ("nan", "NaN"), ("inf", "Inf"), ("shape", "shape"), ("negative", "num_examples"),
    ("inflate", "num_examples"),
])
def test_invalid_updates_are_rejected_naming_the_client(client3, faults, mode, reason) -> None:
    faults.set("silo2", mode)
    session = start(client3, rounds=2, min_clients=2)

    assert session.wait(60)

    assert dropped_by_round(session)[1] == ["silo2/train_silo2"]
    error = next(c["error"] for c in session.info()["clients"] if c["runner"] == "silo2")
    assert "silo2/train_silo2" in error and reason.lower() in error.lower()
    fed = session.metrics().as_dict()["federated_metrics"]
    assert all(m["loss"] < 1.0 for m in fed)  # nothing poisoned reached the model


def test_when_too_few_honest_clients_remain_the_policy_fails_the_session(client3, faults) -> None:
    faults.set("silo2", "nan")
    session = start(client3, rounds=2, min_clients=3)

    with pytest.raises(SessionFailed, match=r"2 client\(s\) answered, 3 required"):
        session.wait(60)


@pytest.mark.parametrize("strategy", [
    {"name": "Median"},
    {"name": "FedAvg", "params": {"clip_norm": 1.0}},
    {"name": "TrimmedMean", "params": {"trim_ratio": 0.34}},
])
def test_robust_aggregation_bounds_a_scaled_update(client3, faults, strategy) -> None:
    faults.set("silo2", "scale")
    session = start(client3, rounds=3, min_clients=3, strategy=strategy)

    assert session.wait(60)

    fed = session.metrics().as_dict()["federated_metrics"]
    assert fed[-1]["loss"] < 0.6 and fed[-1]["roc_auc"] > 0.75


def test_the_plain_mean_is_not_robust_to_a_scaled_update(client3, faults) -> None:
    # The contrast that makes the test above meaningful: without a robust rule the model breaks.
    faults.set("silo2", "scale")
    session = start(client3, rounds=3, min_clients=3)

    try:
        session.wait(60)
        broken = session.metrics().as_dict()["federated_metrics"][-1]["loss"] > 1.0
    except SessionFailed:
        broken = True
    assert broken
