"""Attack #9, isolating a row through glm's Newton sums at coefficients the caller chooses.

A ``newton`` step returns the exact score ``Σ x_i s_i`` and Fisher information ``Σ w_i x_i x_iᵀ``
of the whole dataset at the coefficients in the request — and the request is the coordinator's
to write. A Poisson model's weights are ``μ_i = e^{η_i}``: with a steep slope on ``x1`` and the
intercept that puts the largest ``x1`` at ``η = 0`` (found by bisection on the returned
``Σ w_i``; the test takes it from the data), every other row weighs a tiny fraction of it, the
information matrix is that one row's outer product, and its first row over its corner is the
person's whole feature vector, to the last digit. A gamma model with a log link (constant
weights) does the same through the score, ``s_i = y_i e^{-η_i} - 1``, for the row with the
smallest prediction. The family's domain limits the logit link (``|η|`` below about 36 for
every row), not these.

The runner now applies a dominance rule to each per-row factor it sums (the information's and
the score's): its effective number of rows ``(Σ|w|)² / Σw²`` must reach the policy's release
minimum, else the step is refused — a sum one or a few rows dominate is theirs, not the
dataset's. An honest fit stays far from it (its weights spread over the rows); one whose classes
separate comes near, and is told to add an L2 penalty.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from attack import task_outcome

from jupyter_fed.wire import decode, encode

PREDICTORS = ["x0", "x1", "x2", "x3", "x4"]


def newton_step(http: Any, dataset: str, coef: np.ndarray, family: str = "logistic",
                target: str = "y", predictors: list[str] = PREDICTORS,
                link: str | None = None) -> dict[str, Any]:
    task = {"type": family, **({"params": {"link": link}} if link else {})}
    spec = {"task_id": f"t-{uuid.uuid4().hex[:10]}", "session_id": uuid.uuid4().hex[:8],
            "round": 1, "package": "glm", "step": "newton", "datasets": {"train": dataset},
            "params": {"model_config": {"solver": "newton", "ml_task": task},
                       "data_config": {"predictors": predictors, "target": target},
                       "num_rounds": 5}}
    return task_outcome(http, spec, encode({"coef": coef}))


def test_a_steep_poisson_slope_does_not_give_the_top_row(fed, new_client, frames) -> None:
    client = new_client()
    df = frames["tracker"]
    person = df.loc[df.x1.idxmax()]
    slope = min(30.0, 700.0 / float(df.x1.max() - df.x1.min()))  # every μ stays above 0
    coef = np.array([-slope * float(person.x1), 0.0, slope, 0.0, 0.0, 0.0])

    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        found = newton_step(http, "tracker", coef, family="poisson")

    if found.get("status", {}).get("state") == "succeeded":
        info = decode(found["result"])["hessian"]
        guess = info[0, 1:] / info[0, 0]
        truth = person[PREDICTORS].to_numpy(dtype=float)
        assert not np.allclose(guess, truth, rtol=1e-6), f"recovered the row: {guess}"
        raise AssertionError("the step was answered at coefficients one row dominates")
    text = " ".join(found["texts"])
    assert "dominated by a few rows" in text and "fewer than" in text, text
    # the refusal says what an honest caller does, and names no value of the row
    assert "alpha" in text
    for value in person[PREDICTORS]:
        assert f"{value:.4f}" not in text


def test_a_gamma_score_through_the_smallest_prediction_is_refused(fed, new_client,
                                                                  frames) -> None:
    # log link: constant information weights, but the score s_i = y_i e^{-η_i} - 1 puts the
    # whole sum on the row with the smallest η (the smallest x1)
    client = new_client()
    df = frames["tracker"]
    person = df.loc[df.x1.idxmin()]
    predictors = ["x1", "x3", "x4", "x0"]
    coef = np.array([0.0, 30.0, 0.0, 0.0, 0.0])
    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        found = newton_step(http, "tracker", coef, family="gamma", target="x2", link="log",
                            predictors=predictors)
    if found.get("status", {}).get("state") == "succeeded":
        score = decode(found["result"])["gradient"]
        guess = score[1:] / score[0]
        truth = person[predictors].to_numpy(dtype=float)
        assert not np.allclose(guess, truth, rtol=1e-6), f"recovered the row: {guess}"
    assert found.get("status", {}).get("state") == "failed", found["texts"]


def test_honest_newton_steps_are_answered(fed, new_client) -> None:
    client = new_client()
    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        # the null model, and a moderate slope: weights spread over the rows
        for coef in (np.array([-0.4, 0, 0, 0, 0, 0.0]),
                     np.array([-1.0, 0.0005, 0.01, -0.01, 0.02, 0.0])):
            found = newton_step(http, "tracker", coef)
            assert found.get("status", {}).get("state") == "succeeded", found["texts"]


def test_linear_inference_logit_sums_at_a_steep_boundary_are_refused(fed, new_client,
                                                                     frames) -> None:
    # LogitRegInference's fit step: one Newton iteration's sums of every model at the caller's
    # coefficients, with no domain check: a boundary through the row with x0 = t
    client = new_client()
    df = frames["tracker"]
    t = 1234.0
    person = df[df.x0 == t].iloc[0]
    shared = ["x2", "x3", "x4"]
    coef = np.array([[-30.0 * t, 0.0, 0.0, 0.0, 30.0]])
    spec = {"task_id": f"t-{uuid.uuid4().hex[:10]}", "session_id": uuid.uuid4().hex[:8],
            "round": 1, "package": "linear_inference", "step": "fit",
            "datasets": {"train": "tracker"},
            "params": {"model_config": {"strategy": {"name": "LogitRegInference"}},
                       "data_config": {"target": "y", "shared_predictors": shared,
                                       "chunked_predictors": ["x0"]}}}
    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        found = task_outcome(http, spec, encode({"coef": coef}))
    if found.get("status", {}).get("state") == "succeeded":
        info = decode(found["result"])["hzz"][0]
        guess = info[0, 1:] / info[0, 0]
        truth = person[shared].to_numpy(dtype=float)
        assert not np.allclose(guess, truth, rtol=1e-6), f"recovered the row: {guess}"
    assert found.get("status", {}).get("state") == "failed", found["texts"]
    assert "dominated by a few rows for 1 of the 1 model(s)" in " ".join(found["texts"])
