"""ffnet with differential privacy: config, the privacy cost the runner debits, and the DP fit step."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from helpers import DATA_CONFIG, model_config

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages import get_package
from jupyter_fed.packages.ffnet._dp import privacy_cost as _cost
from jupyter_fed.packages.ffnet.config import parse
from jupyter_fed.privacy.accounting import DatasetFacts, PrivacyCost, dp_sgd_epsilon

FACTS = {"train": DatasetFacts(800, 1e-5), "test": DatasetFacts(400, 1e-5)}


def privacy_cost(step: str, params: Any, facts: dict | None = None) -> dict[str, PrivacyCost]:
    return _cost(step, params, FACTS if facts is None else facts)

DP = {"epsilon": 3.0, "max_grad_norm": 1.0}


def _params(dp: Any = DP, **extra: Any) -> dict[str, Any]:
    mc = model_config() if dp is None else model_config(differential_privacy_params=dp)
    return {"model_config": mc, "data_config": DATA_CONFIG, **extra}


# -- config -----------------------------------------------------------------------------------
def test_reference_sdk_shape_parses_with_default_delta() -> None:
    cfg, _ = parse(model_config(differential_privacy_params={"epsilon": 4, "max_grad_norm": 7}),
                   DATA_CONFIG)

    dp = cfg.differential_privacy_params
    assert (dp.epsilon, dp.max_grad_norm, dp.delta) == (4.0, 7.0, 1e-5)
    assert parse(model_config(), DATA_CONFIG)[0].differential_privacy_params is None


@pytest.mark.parametrize(("dp", "field"), [
    ({"epsilon": 0, "max_grad_norm": 1}, "epsilon"),
    ({"epsilon": -1, "max_grad_norm": 1}, "epsilon"),
    ({"epsilon": float("inf"), "max_grad_norm": 1}, "epsilon"),
    ({"max_grad_norm": 1}, "epsilon"),
    ({"epsilon": 1, "max_grad_norm": 0}, "max_grad_norm"),
    ({"epsilon": 1}, "max_grad_norm"),
    ({"epsilon": 1, "max_grad_norm": 1, "delta": 0}, "delta"),
    ({"epsilon": 1, "max_grad_norm": 1, "delta": 1}, "delta"),
    ({"epsilon": 1, "max_grad_norm": 1, "noise": 2}, "noise"),
])
def test_bad_dp_params_name_the_field(dp: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(model_config(differential_privacy_params=dp), DATA_CONFIG)

    fields = [d["field"] for d in err.value.details]
    assert fields == [f"model_config.differential_privacy_params.{field}"]


def test_dp_refuses_data_dependent_class_balancing() -> None:
    with pytest.raises(ConfigError, match="balance_train_datasets cannot be combined"):
        parse(model_config(differential_privacy_params=DP, balance_train_datasets=True),
              DATA_CONFIG)


def test_plan_sends_num_rounds_with_every_step() -> None:
    plan = get_package("ffnet").load_plan()(model_config(), DATA_CONFIG, 7)

    assert plan.step_params()["num_rounds"] == 7


# -- privacy cost (runs at the runner on untrusted params) ------------------------------------
@pytest.mark.parametrize(("epsilon", "rounds", "per_round"), [(3.0, 3, 1.0), (4.0, 3, 4 / 3),
                                                              (1.0, 1, 1.0), (5.0, 10, 0.5)])
def test_fit_costs_epsilon_over_num_rounds_on_train(epsilon: float, rounds: int,
                                                    per_round: float) -> None:
    params = _params({"epsilon": epsilon, "max_grad_norm": 1.0}, num_rounds=rounds)

    cost = privacy_cost("fit", params)

    assert cost["train"].epsilon == pytest.approx(per_round, rel=1e-15)
    assert cost["train"].delta == pytest.approx(min(1e-5 / rounds, 1e-5))
    assert sum([cost["train"].epsilon] * rounds) == pytest.approx(epsilon, rel=1e-12)  # total
    assert cost["test"] == PrivacyCost(0.0, evaluation=True)  # the incoming model is measured


def test_delta_is_capped_by_the_policy_and_the_debit_covers_the_accountant() -> None:
    """Attack #2: epsilon 1e-9 with delta 0.99 must not train with a tiny noise multiplier."""
    from jupyter_fed.packages.ffnet._dp import plan_round
    from jupyter_fed.privacy.accounting import dp_sgd_schedule

    params = _params({"epsilon": 3.0, "max_grad_norm": 1.0, "delta": 0.99}, num_rounds=3)
    plan = plan_round(params, 800, 1 / 800 ** 2)
    q, steps = dp_sgd_schedule(800, 32, 1)

    assert plan.delta == 1 / 800 ** 2  # 0.99 / 3 asked, the cap holds
    spent = dp_sgd_epsilon(plan.noise_multiplier, q, steps, plan.delta)
    assert spent <= plan.epsilon == 1.0 and spent > 0.999  # the smallest sufficient noise
    with pytest.raises(ConfigError, match="cannot reach epsilon"):
        plan_round(_params({"epsilon": 1e-9, "max_grad_norm": 1.0, "delta": 0.99}, num_rounds=1),
                   800, 1e-5)


@pytest.mark.parametrize("norm", [1e30, float("inf"), 1e4])
def test_an_absurd_max_grad_norm_is_refused(norm: float) -> None:
    with pytest.raises(ConfigError, match="max_grad_norm"):
        parse(model_config(differential_privacy_params={"epsilon": 1, "max_grad_norm": norm}),
              DATA_CONFIG)


def test_registered_cost_is_the_same_for_every_alias() -> None:
    params = _params(num_rounds=3)
    for name in ("ffnet", "iai_ffnet"):
        assert get_package(name).privacy_cost_of("fit", params, FACTS)["train"].epsilon == 1.0


def test_evaluate_and_non_dp_steps_spend_nothing_but_count_as_evaluations() -> None:
    free = PrivacyCost(0.0, evaluation=True)
    assert privacy_cost("evaluate", _params(num_rounds=3)) == {"test": free}
    assert privacy_cost("evaluate", _params()) == {"test": free}  # no num_rounds needed
    # a non-DP fit's training loss measures its own model (the one training) on the train rows
    trained = PrivacyCost(0.0, trains=True, evaluation=True, party_model=True)
    assert privacy_cost("fit", _params(None)) == {"train": trained, "test": free}
    assert privacy_cost("fit", _params(None), {"train": FACTS["train"]}) == {"train": trained}
    # no test set: without DP the training rows are measured; under DP nothing is
    assert privacy_cost("evaluate", _params(None), {"train": FACTS["train"]}) == {"train": free}
    assert privacy_cost("evaluate", _params(), {"train": FACTS["train"]}) == {
        "train": PrivacyCost(0.0, reads=False)}


@pytest.mark.parametrize("rounds", [None, 0, -3, 2.5, True, "3", 100_001, float("nan")])
def test_dp_fit_without_a_sane_num_rounds_is_refused(rounds: Any) -> None:
    params = _params() if rounds is None else _params(num_rounds=rounds)

    with pytest.raises(ConfigError) as err:
        privacy_cost("fit", params)

    assert [d["field"] for d in err.value.details] == ["num_rounds"]
    assert "num_rounds" in err.value.message


@pytest.mark.parametrize(("params", "field"), [
    (None, "params"), ([1, 2], "params"), ({"num_rounds": 3}, "model_config"),
    ({"model_config": "x", "num_rounds": 3}, "model_config"),
    (_params({"epsilon": -1, "max_grad_norm": 1}, num_rounds=3),
     "model_config.differential_privacy_params.epsilon"),
])
def test_nonsense_params_are_refused(params: Any, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        privacy_cost("fit", params)

    assert err.value.details[0]["field"] == field


def test_costing_a_step_imports_neither_torch_nor_opacus() -> None:
    code = ("import sys, jupyter_fed\n"
            "from jupyter_fed.packages import get_package\n"
            "p = {'model_config': {'model': {'params': {'input_size': 1, 'output_size': 2}},\n"
            "     'differential_privacy_params': {'epsilon': 1, 'max_grad_norm': 1}},\n"
            "     'num_rounds': 2}\n"
            "from jupyter_fed.privacy.accounting import DatasetFacts\n"
            "f = {'train': DatasetFacts(1000, 1e-6)}\n"
            "assert get_package('ffnet').privacy_cost_of('fit', p, f)['train'].epsilon == 0.5\n"
            "print(' '.join(m for m in ('torch', 'opacus') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.split() == []


# -- the DP fit step, called directly on in-memory data ----------------------------------------
@pytest.fixture(scope="module")
def silo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from jupyter_fed.demo.data import write_silos
    from jupyter_fed.runner.data import LoadedDataset, inspect, read_table

    paths = write_silos(tmp_path_factory.mktemp("dp"), rows=800, clients=1, test_rows=400)
    return {role: LoadedDataset(inspect(name, paths[name]), read_table(paths[name]))
            for role, name in (("train", "train_silo0"), ("test", "test"))}


def _fit(silo: dict[str, Any], params: dict[str, Any], roles: tuple[str, ...] = ("train", "test"),
         step: str = "fit") -> tuple[Any, dict[str, np.ndarray]]:
    import torch

    from jupyter_fed.packages.base import StepContext
    from jupyter_fed.packages.ffnet import _net, local

    torch.set_num_threads(1)
    weights = _net.initial_weights(parse(params["model_config"], DATA_CONFIG)[0])
    result = getattr(local, step)(StepContext("unit", 1), {r: silo[r] for r in roles}, params,
                                  weights)
    return result, weights


def test_dp_fit_spends_at_most_its_share_and_keeps_the_state_dict_names(silo) -> None:
    from jupyter_fed.packages.ffnet.model import FFNetModel

    params = _params(num_rounds=3)
    result, initial = _fit(silo, params)

    report = result.outputs["privacy"]
    print(f"\nDP fit: epsilon spent {report['epsilon_spent']:.4f} of {report['epsilon_budgeted']} "
          f"(delta {report['delta']:g}, noise multiplier {report['noise_multiplier']:.3f}, "
          f"{report['steps']} steps)")
    assert report["epsilon_budgeted"] == privacy_cost("fit", params)["train"].epsilon == 1.0
    assert 0.9 < report["epsilon_spent"] <= report["epsilon_budgeted"] + 1e-6
    assert report["delta"] == pytest.approx(1 / 800 ** 2)  # the default cap 1/n² < 1e-5 / 3
    assert result.outputs["train"]["privacy"] == report  # what session.rounds() shows
    assert "train_loss" not in result.outputs["train"]  # a non-private statistic of the rows
    assert set(result.outputs["metrics"]) >= {"test_loss", "test_roc_auc"}
    assert result.num_examples == 800
    # original names (no opacus "_module." prefix), same shapes, trained
    assert list(result.tensors) == list(initial)
    assert all(result.tensors[k].shape == v.shape for k, v in initial.items())
    assert any(not np.array_equal(result.tensors[k], v) for k, v in initial.items())
    model = FFNetModel(result.tensors, {"model_config": params["model_config"],
                                        "data_config": DATA_CONFIG})
    assert model.predict(silo["test"].to_pandas()).shape == (400, 2)


def test_dp_noise_is_not_replayable_from_the_config_seed(silo) -> None:
    params = _params(num_rounds=3)

    a, _ = _fit(silo, params)
    b, _ = _fit(silo, params)

    assert any(not np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


def test_without_dp_fit_is_unchanged_and_deterministic(silo) -> None:
    a, _ = _fit(silo, _params(None))
    b, _ = _fit(silo, _params(None))

    assert "privacy" not in a.outputs and "train_loss" in a.outputs["train"]
    assert all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


def test_dp_never_measures_the_model_on_the_training_rows(silo) -> None:
    params = _params(num_rounds=3)

    fitted, _ = _fit(silo, params, roles=("train",))
    evaluated, _ = _fit(silo, params, roles=("train",), step="evaluate")

    assert fitted.outputs["metrics"] == {} and evaluated.outputs["metrics"] == {}
    assert evaluated.num_examples == 0
    # without DP, the training rows stand in for a missing test set, as before
    plain, _ = _fit(silo, _params(None), roles=("train",), step="evaluate")
    assert plain.outputs["metrics"]["test_num_examples"] == 800


def test_an_unreachable_epsilon_is_a_config_error(silo) -> None:
    with pytest.raises(ConfigError, match=r"cannot reach epsilon 1e-07 per round"):
        _fit(silo, _params({"epsilon": 1e-6, "max_grad_norm": 1.0}, num_rounds=10))


def test_dp_fit_recomputes_the_cost_from_its_params(silo) -> None:
    with pytest.raises(ConfigError, match="num_rounds"):
        _fit(silo, _params())
