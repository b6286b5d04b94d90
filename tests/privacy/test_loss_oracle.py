"""Attack #5, the loss oracle: five ``ffnet.evaluate`` calls with a crafted step-function model
recovered one person's target (37.44, true 37.41); evaluation spent no budget.

An evaluation is now a query: one exact evaluation per training round of a session; beyond that
(here: evaluations in sessions that never trained) each is charged the policy's
``evaluation_epsilon`` and answered with noise over per-row losses clipped to
``evaluation_loss_bound`` — or refused when that epsilon is 0, and always on ``require_dp``.

False-failure probability: the crafted model's losses are clipped at 10 per row, so the attack's
estimate is ``t/2`` plus Laplace noise of standard deviation ~0.8 at ``t = 40``: landing within
1 of 37.41 needs a 20-standard-deviation draw.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from attack import TARGET_ROW, TARGET_Y, register, task_outcome, train_alone

from jupyter_fed.wire import encode

MODEL = {"model": {"params": {"input_size": 1, "hidden_layer_sizes": [3], "output_size": 1}},
         "ml_task": {"type": "regression"}, "normalize": False,  # the attacker's own choice
         "optimizer": {"name": "SGD", "params": {"learning_rate": 1e-5}}}
DATA = {"predictors": ["x0"], "target": "y"}


def crafted(v: float, t: float) -> bytes:
    """Outputs ``t`` for the row whose x0 is ``v`` and 0 for every other (x0 are integers)."""
    return encode({"0.weight": np.ones((3, 1), np.float32),
                   "0.bias": np.array([1 - v, -v, -1 - v], np.float32),
                   "2.weight": np.array([[t, -2 * t, t]], np.float32),
                   "2.bias": np.zeros(1, np.float32)})


def losses(http: Any, dataset: str, v: float, ts: list[float]) -> list[dict[str, Any]]:
    outs = []
    for t in ts:  # each in a session of its own, as a hostile client would
        spec = {"task_id": f"t-{uuid.uuid4().hex[:10]}", "session_id": uuid.uuid4().hex[:8],
                "round": 1, "package": "ffnet", "step": "evaluate",
                "datasets": {"train": dataset},
                "params": {"model_config": MODEL, "data_config": DATA, "num_rounds": 1}}
        outs.append(task_outcome(http, spec, crafted(v, t)))
    return outs


def estimate(ts: list[float], values: list[float], n: int) -> float:
    """Least squares of n·L(t) = c - 2 y* t + t² (the attack's algebra)."""
    t = np.asarray(ts)
    slope = np.polyfit(t, n * np.asarray(values) - t ** 2, 1)[0]
    return float(-slope / 2)


def test_five_crafted_evaluations_do_not_reveal_a_target(fed, new_client, frames) -> None:
    client = new_client()
    df = frames["regress"]
    v = float(df.x0[TARGET_ROW])
    ts = [0.0, 10.0, 20.0, 30.0, 40.0]

    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        outs = losses(http, "regress", v, ts)

    metrics = [o["status"]["outputs"]["metrics"] for o in outs]
    got = estimate(ts, [m["test_loss"] for m in metrics], len(df))
    print(f"\nloss oracle: recovered {got:.2f}, true {TARGET_Y}")
    assert all("test_noisy_epsilon" in m for m in metrics)  # each one charged and noisy
    assert abs(got - TARGET_Y) > 1.0
    with fed.processes["p0"].http(timeout=60) as admin:
        spent = [r["spent"] for r in admin.get("/v1/budget", params={"principal": client.user})
                 .json() if r["dataset"] == "regress"]
    assert spent == [pytest.approx(5.0)]  # evaluation_epsilon 1 each


def test_evaluations_are_refused_on_require_dp_and_when_the_policy_gives_no_budget(
        fed, new_client, privacy_root) -> None:
    client = new_client()
    path = str(privacy_root / "regress.parquet")
    dp = register(fed, "p0", {"name": f"regress_dp_{uuid.uuid4().hex[:6]}", "path": path},
                  {"require_dp": True})
    strict = register(fed, "p0", {"name": f"regress_strict_{uuid.uuid4().hex[:6]}",
                                  "path": path}, {"evaluation_epsilon": 0})

    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        on_dp = losses(http, dp, 3.0, [1.0])[0]
        on_strict = losses(http, strict, 3.0, [1.0])[0]

    assert on_dp["submit"] == 403 and "would measure a model on its rows" in on_dp["texts"][0]
    assert on_strict["submit"] == 403 and "evaluation refused" in on_strict["texts"][0]


def test_a_training_session_keeps_its_exact_per_round_evaluations(fed, new_client) -> None:
    client = new_client()
    session = train_alone(client, "regress", MODEL, DATA)

    fed_metrics = session.metrics().as_dict()["federated_metrics"]
    assert len(fed_metrics) == 3 and all("r2" in m for m in fed_metrics)  # exact: R² included
    with fed.processes["p0"].http(timeout=60) as admin:
        assert not [r for r in admin.get("/v1/budget", params={"principal": client.user}).json()
                    if r["spent"] > 0]
