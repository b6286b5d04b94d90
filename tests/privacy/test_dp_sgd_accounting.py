"""Attack #2: DP-SGD with delta ~ 1. On a ``require_dp`` dataset, epsilon 1e-9 with delta 0.99
trained with noise multiplier 0.41 and the ledger was charged 1e-9 (opacus reported epsilon
-0.0005); ``max_grad_norm = 1e30`` was accepted.

Now delta is capped per step by the dataset's policy (1/n², at most 1e-5), the noise multiplier
is the smallest that opacus' RDP accountant proves within the round's epsilon at that delta, the
ledger debits that epsilon and delta, and an epsilon no noise can reach is refused before any
row is read.
"""

from __future__ import annotations

import shutil
import uuid

import pytest
from attack import register

from jupyter_fed import SessionTaskGroup
from jupyter_fed.errors import FedError
from jupyter_fed.privacy.accounting import dp_sgd_epsilon, dp_sgd_schedule

MODEL = {"model": {"params": {"input_size": 2, "hidden_layer_sizes": [4], "output_size": 1}},
         "ml_task": {"type": "regression"}, "batch_size": 32}
DATA = {"predictors": ["x0", "x1"], "target": "y"}


@pytest.fixture()
def protected(fed, privacy_root) -> str:
    """A require_dp dataset on a file of its own (its own budget)."""
    name = f"dp_{uuid.uuid4().hex[:6]}"
    shutil.copy(privacy_root / "regress.parquet", privacy_root / f"{name}.parquet")
    return register(fed, "p0", {"name": name, "path": str(privacy_root / f"{name}.parquet")},
                    {"require_dp": True})


def session(client, dataset: str, dp: dict, rounds: int):
    s = client.create_fl_session(name="dp", min_num_clients=1, num_rounds=rounds,
                                 model_config={**MODEL, "differential_privacy_params": dp},
                                 data_config=DATA).start()
    ctx = SessionTaskGroup(s).add_task(client.task_builder().hfl(dataset, runner="p0")).start()
    return s, ctx


def spent(fed, user: str, dataset: str) -> tuple[float, float]:
    with fed.processes["p0"].http() as admin:
        rows = [r for r in admin.get("/v1/budget", params={"principal": user}).json()
                if r["dataset"] == dataset]
    return (rows[0]["spent"], rows[0]["delta_spent"]) if rows else (0.0, 0.0)


def test_a_tiny_epsilon_with_a_huge_delta_is_refused_and_costs_nothing(fed, new_client,
                                                                        protected) -> None:
    client = new_client()
    _, ctx = session(client, protected, {"epsilon": 1e-9, "max_grad_norm": 1.0, "delta": 0.99}, 1)

    with pytest.raises(FedError, match="cannot reach epsilon 1e-09"):
        ctx.wait(60)

    assert spent(fed, client.user, protected) == (0.0, 0.0)


def test_delta_is_capped_and_the_ledger_covers_the_accountant(fed, new_client, protected) -> None:
    client = new_client()
    s, ctx = session(client, protected, {"epsilon": 3.0, "max_grad_norm": 1.0, "delta": 0.99}, 3)

    assert ctx.wait(120) is True
    reports = [train["privacy"] for r in s.rounds() if "train" in r["info"]
               for train in r["info"]["train"].values()]
    q, steps = dp_sgd_schedule(200, 32, 1)
    for report in reports:
        print(f"\nround: epsilon {report['epsilon_spent']:.4f} of {report['epsilon_budgeted']}, "
              f"delta {report['delta']:g}, noise multiplier {report['noise_multiplier']:.3f}")
        assert report["delta"] == 1e-5  # 0.99 / 3 asked; 1/200² = 2.5e-5 capped at 1e-5
        assert report["noise_multiplier"] > 0.41
        accountant = dp_sgd_epsilon(report["noise_multiplier"], q, steps, report["delta"])
        assert report["epsilon_spent"] <= accountant + 1e-9 <= report["epsilon_budgeted"] + 1e-9
    eps, delta = spent(fed, client.user, protected)
    assert len(reports) == 3 and eps == pytest.approx(3.0) and delta == pytest.approx(3e-5)


def test_an_absurd_clipping_norm_is_refused_when_the_session_is_created(new_client) -> None:
    client = new_client()
    with pytest.raises(FedError, match="max_grad_norm"):
        client.create_fl_session(name="dp", min_num_clients=1, num_rounds=1,
                                 model_config={**MODEL, "differential_privacy_params": {
                                     "epsilon": 1.0, "max_grad_norm": 1e30}}, data_config=DATA)
