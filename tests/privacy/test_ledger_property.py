"""Property: whatever sequence of requests arrives — valid and hostile DP parameters, retried task
ids, concurrent submissions, several principals and datasets — the ledger never records more
than the budget, and never less than opacus' RDP accountant computes for the steps it allowed.

The requests go through the runner's own charging path (:func:`charge_step`, the ffnet package's
declared cost, the SQLite ledger), exactly as ``POST /v1/tasks`` does before reading a row.
"""

from __future__ import annotations

import math
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers import model_config
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jupyter_fed.errors import FedError
from jupyter_fed.packages import get_package
from jupyter_fed.packages.ffnet._dp import plan_round
from jupyter_fed.privacy.accounting import dp_sgd_epsilon, dp_sgd_schedule
from jupyter_fed.runner.budget import charge_step
from jupyter_fed.runner.policy import DatasetPolicy, Ledger, budget_group
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire import ColumnInfo, DatasetInfo, TaskSpec

DATASETS = {"d1": 800, "d2": 3000}
POLICIES = {"d1": DatasetPolicy(epsilon_budget=4.0), "d2": DatasetPolicy(epsilon_budget=10.0,
                                                                         delta_budget=3e-6)}

numbers = st.one_of(st.floats(1e-3, 30), st.sampled_from(
    [0.0, -1.0, 1e-9, 1e6, math.inf, math.nan, 0.5, 2.0]))
deltas = st.one_of(st.floats(1e-12, 0.5), st.sampled_from([0.99, 1.0, 0.0, math.nan, 1e-5]))
common = {"principal": st.sampled_from(["ann", "bob"]),
          "dataset": st.sampled_from(sorted(DATASETS)),
          "batch_size": st.sampled_from([1, 16, 64, 5000]), "local_epochs": st.sampled_from([1, 2]),
          "retry": st.sampled_from([False, False, False, True])}
valid = st.fixed_dictionaries({**common, "epsilon": st.floats(0.5, 6), "delta": deltas,
                               "max_grad_norm": st.just(1.0),
                               "num_rounds": st.sampled_from([1, 2, 3])})
hostile = st.fixed_dictionaries({
    **common, "epsilon": numbers, "delta": deltas,
    "max_grad_norm": st.sampled_from([1.0, 5.0, 1e30, 0.0, -2.0]),
    "num_rounds": st.sampled_from([1, 2, 3, 10, 0, -1, True, "3", 2.5])})
request = st.one_of(valid, hostile)


def _info(name: str) -> tuple[DatasetInfo, Path]:
    path = Path(f"/silo/{name}.parquet")
    info = DatasetInfo(name=name, format="parquet", num_rows=DATASETS[name], num_columns=16,
                       columns=[ColumnInfo(name=f"x{i}", dtype="double") for i in range(15)]
                       + [ColumnInfo(name="y", dtype="int64")], registered_at=datetime.now(UTC),
                       budget_group=budget_group(path))
    return info, path


def _params(r: dict[str, Any]) -> dict[str, Any]:
    mc = model_config(batch_size=r["batch_size"], local_epochs=r["local_epochs"],
                      differential_privacy_params={"epsilon": r["epsilon"], "delta": r["delta"],
                                                   "max_grad_norm": r["max_grad_norm"]})
    return {"model_config": mc, "data_config": {"predictors": [f"x{i}" for i in range(15)],
                                                "target": "y"}, "num_rounds": r["num_rounds"]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request, min_size=1, max_size=10))
def test_recorded_spend_is_within_budget_and_covers_the_accountant(requests) -> None:
    store = RunnerStore(Path(tempfile.mkdtemp()) / "runner.db")
    ledger, package = Ledger(store), get_package("ffnet")
    accepted: dict[str, tuple[dict[str, Any], str, float, float]] = {}
    sent: list[tuple[dict[str, Any], str]] = []

    def submit(r: dict[str, Any], task_id: str) -> None:
        info, path = _info(r["dataset"])
        spec = TaskSpec(task_id=task_id, session_id="s", round=1, package="ffnet", step="fit",
                        datasets={"train": r["dataset"]}, params=_params(r))
        try:
            granted = charge_step(ledger, spec, package, {"train": (info, path)},
                                  {"train": POLICIES[r["dataset"]]}, r["principal"], b"")
        except FedError:
            return
        grant = granted["train"]["grant"]
        accepted[task_id] = (r, info.budget_group, grant["epsilon"], grant["delta"])

    try:
        jobs = []
        with ThreadPoolExecutor(4) as pool:
            for r in requests:  # a retry re-sends an earlier request as it was, same task id
                r, task_id = sent[-1] if r["retry"] and sent else (r, uuid.uuid4().hex)
                sent.append((r, task_id))
                jobs.append(pool.submit(submit, r, task_id))
        for j in jobs:
            j.result()
        spending = {(row["principal"], row["group"]): row for row in ledger.spending()}
    finally:
        store.close()

    needed: dict[tuple[str, str], list[float]] = {}
    for r, group, eps, delta in accepted.values():
        principal = r["principal"]
        plan = plan_round(_params(r), DATASETS[r["dataset"]],
                          POLICIES[r["dataset"]].delta_cap(DATASETS[r["dataset"]]))
        q, steps = dp_sgd_schedule(DATASETS[r["dataset"]], r["batch_size"], r["local_epochs"])
        accountant = dp_sgd_epsilon(plan.noise_multiplier, q, steps, plan.delta)
        assert accountant <= eps + 1e-9 and delta == plan.delta  # each grant covers its steps
        acc = needed.setdefault((principal, group), [0.0, 0.0])
        acc[0] += accountant
        acc[1] += delta
    for (principal, group), row in spending.items():
        name = next(n for n in DATASETS if budget_group(Path(f"/silo/{n}.parquet")) == group)
        policy = POLICIES[name]
        assert row["spent"] <= policy.epsilon_budget + 1e-9  # never above the budget
        assert row["delta_spent"] <= policy.total_delta(DATASETS[name]) * (1 + 1e-9)
        eps_needed, delta_needed = needed.get((principal, group), (0.0, 0.0))
        assert row["spent"] >= eps_needed - 1e-9  # never below what the accountant computes
        assert row["delta_spent"] >= delta_needed * (1 - 1e-9)
    assert set(needed) <= set(spending)
    retried = len(sent) - len({t for _, t in sent})
    event(f"accepted: {min(len(accepted), 3)}+" if accepted else "accepted: none")
    event(f"retried: {bool(retried)}")
