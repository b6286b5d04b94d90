"""Attack #7, the loss oracle through the training loss: ``ffnet.fit`` with a crafted model and a
learning rate of 0 reports, as ``train_loss``, the crafted model's exact loss on the training rows.

The runner held evaluations to one exact answer per training round — but only the evaluations
a package declared, and the training loss of a non-DP ``fit`` was not one. Five ``fit`` steps of
one session, all called round 1 (no invented rounds: one training round, its one evaluation),
each with attack #5's step-function model (``t`` on the target's ``x0``, 0 elsewhere) and
``learning_rate: 0``: the evaluations of the incoming model were answered exactly once and then
with noise, and charged — but the five ``train_loss`` values were exact, and free, and gave the
target back (``n·L(t) = c - 2·y·t + t²``).

Now a non-DP ``fit`` (ffnet and glm) declares the training loss as an evaluation on ``train``
of a model of its own (it depends on the training settings, not only on the request's arrays):
exact for the round's one evaluation, beyond it noisy (ffnet, as its test metrics) or absent
(glm), and charged ``evaluation_epsilon``. When train and test are views of the same file the
two measurements of one step share the round's slot.

Session ids and round numbers are the caller's: a principal who invents them gets one exact
evaluation per invented round — at most ``max_exact_evaluations`` of them per file over all
sessions (attack #8, below); beyond, evaluations are noisy and charged.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from attack import TARGET_ROW, TARGET_Y, register, task_outcome, train_alone
from test_loss_oracle import DATA, MODEL, crafted, estimate

from jupyter_fed.wire import encode

STILL = {**MODEL, "optimizer": {"name": "SGD", "params": {"learning_rate": 0.0}}}
"""Attack #5's model config with a learning rate of 0: training leaves the crafted model as is."""


def fits(http: Any, dataset: str, v: float, ts: list[float], package: str = "ffnet",
         model: dict[str, Any] = STILL, tensors: Any = crafted) -> list[dict[str, Any]]:
    """One ``fit`` per ``t``, all in one session and round."""
    session = uuid.uuid4().hex[:8]
    outs = []
    for t in ts:
        spec = {"task_id": f"t-{uuid.uuid4().hex[:10]}", "session_id": session, "round": 1,
                "package": package, "step": "fit", "datasets": {"train": dataset},
                "params": {"model_config": model, "data_config": DATA, "num_rounds": 1}}
        found = task_outcome(http, spec, tensors(v, t))
        assert found.get("status", {}).get("state") == "succeeded", found["texts"]
        outs.append(found["status"]["outputs"])
    return outs


def spent(fed: Any, user: str, dataset: str) -> float:
    with fed.processes["p0"].http(timeout=60) as admin:
        # a row per budget group; its "dataset" names every dataset on that file
        return sum(r["spent"] for r in admin.get("/v1/budget", params={"principal": user}).json()
                   if dataset in r["dataset"].split(","))


def test_training_losses_of_a_crafted_model_do_not_reveal_a_target(fed, new_client,
                                                                     frames) -> None:
    client = new_client()
    df = frames["regress"]
    v = float(df.x0[TARGET_ROW])
    ts = [0.0, 10.0, 20.0, 30.0, 40.0]

    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        outs = fits(http, "regress", v, ts)

    train = [o["train"] for o in outs]
    got = estimate(ts, [m["train_loss"] for m in train], len(df)) \
        if all("train_loss" in m for m in train) else float("nan")
    print(f"\ntrain-loss oracle: recovered {got:.2f}, true {TARGET_Y}")
    exact = [m for m in train if "train_loss" in m and "train_noisy_epsilon" not in m]
    assert not abs(got - TARGET_Y) <= 1.0, f"recovered the target: {got:.2f}"
    assert len(exact) == 1  # the round's one evaluation; the other four noisy
    assert all("train_noisy_epsilon" in m for m in train[1:])
    # each of the four extra steps measured the model once on the one file (its evaluation of
    # the incoming model and its training loss share the slot): evaluation_epsilon 1 each
    assert spent(fed, client.user, "regress") == pytest.approx(4.0)


def test_invented_sessions_get_no_more_exact_evaluations_than_the_policy_allows(
        fed, new_client, frames, privacy_root) -> None:
    """Attack #8: what the docstring leaves — a new session id for every ``fit`` makes each one
    round 1 of a training session, so each earned the round's exact evaluation, and five gave
    the target back as in attack #7. Exact evaluations are now counted per principal and file,
    over all sessions (``max_exact_evaluations``): beyond the count they are noisy and charged."""
    client = new_client()
    capped = register(fed, "p0", {"name": f"regress_capped_{uuid.uuid4().hex[:6]}",
                                  "path": str(privacy_root / "regress.parquet")},
                      {"max_exact_evaluations": 2})
    v = float(frames["regress"].x0[TARGET_ROW])
    ts = [0.0, 10.0, 20.0, 30.0, 40.0]

    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        train = [fits(http, capped, v, [t])[0]["train"] for t in ts]  # a session each

    exact = [m for m in train if "train_noisy_epsilon" not in m]
    assert len(exact) == 2 and all("train_loss" in m for m in exact)
    got = estimate(ts, [m["train_loss"] for m in train], len(frames["regress"]))
    print(f"\ninvented-session oracle: recovered {got:.2f}, true {TARGET_Y}")
    assert not abs(got - TARGET_Y) <= 1.0, f"recovered the target: {got:.2f}"
    assert spent(fed, client.user, capped) == pytest.approx(3.0)  # the three beyond the count


def test_a_training_session_keeps_its_exact_training_loss(fed, new_client) -> None:
    client = new_client()
    session = train_alone(client, "regress", MODEL, DATA)

    train = [t for r in session.rounds() if "train" in r["info"]
             for t in r["info"]["train"].values()]
    assert len(train) == 2 and all("train_loss" in t and "train_noisy_epsilon" not in t
                                   for t in train)
    assert spent(fed, client.user, "regress") == 0.0


def test_glm_reports_one_exact_training_loss_per_round(fed, new_client) -> None:
    client = new_client()
    glm = {"solver": "sgd", "ml_task": {"type": "normal"}, "normalize": False,
           "optimizer": {"name": "SGD", "params": {"learning_rate": 0.0}}}

    def coef(_v: float, t: float) -> bytes:
        return encode({"linear.weight": np.zeros((1, 1), np.float32),
                       "linear.bias": np.array([t], np.float32)})

    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        outs = fits(http, "regress", 0.0, [0.0, 10.0, 20.0], "glm", glm, coef)

    train = [o["train"] for o in outs]
    assert "train_loss" in train[0]
    assert not any("train_loss" in m for m in train[1:])  # glm has no noisy metrics
