"""Server optimisers, robust aggregation rules, clipping, state round trips and strategy config."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jupyter_fed.errors import ConfigError, UpdateRejected
from jupyter_fed.strategies import (
    STRATEGY_NAMES,
    ClientUpdate,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedYogi,
    RobustStrategy,
    make_strategy,
    update_norm,
)
from jupyter_fed.strategies._robust import krum_scores
from jupyter_fed.strategies.fedavg import weighted_mean


def weights(dtype: Any = np.float64, **arrays: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=dtype) for k, v in arrays.items()}


def upd(cid: str, n: int, dtype: Any = np.float64, **arrays: Any) -> ClientUpdate:
    return ClientUpdate(cid, weights(dtype, **arrays), n)


# --------------------------------------------------------------------------- aggregation rules


def test_mean_weights_clients_by_example_count() -> None:
    # Prepare: 1 example says (1, 2 | 3), 3 examples say (5, 6 | 7)
    global_w = weights(w=[0.0, 0.0], b=[0.0])
    updates = [upd("a", 1, w=[1.0, 2.0], b=[3.0]), upd("b", 3, w=[5.0, 6.0], b=[7.0])]

    # Execute
    new = FedAvg().aggregate(global_w, updates)

    # Assert: (1*1 + 3*5)/4 = 4, (1*2 + 3*6)/4 = 5, (1*3 + 3*7)/4 = 6
    np.testing.assert_array_equal(new["w"], [4.0, 5.0])
    np.testing.assert_array_equal(new["b"], [6.0])


def test_aggregation_casts_back_to_global_dtype_and_never_modifies_inputs() -> None:
    # Prepare
    global_w = weights(np.float32, w=[[1.0, 2.0]], step=[7])
    global_w["step"] = global_w["step"].astype(np.int64)
    updates = [ClientUpdate("a", {"w": np.array([[2.0, 3.0]], np.float32), "step": np.array([8])}, 1),
               ClientUpdate("b", {"w": np.array([[4.0, 5.0]], np.float32), "step": np.array([9])}, 1)]
    snapshot = [{k: v.copy() for k, v in u.weights.items()} for u in updates]
    global_before = {k: v.copy() for k, v in global_w.items()}

    # Execute
    new = FedAdam(eta=0.5).aggregate(global_w, updates)

    # Assert
    assert new["w"].dtype == np.float32 and new["step"].dtype == np.int64
    assert all(np.array_equal(global_w[k], global_before[k]) for k in global_w)
    for u, before in zip(updates, snapshot, strict=True):
        assert all(np.array_equal(u.weights[k], before[k]) for k in before)
    assert not np.shares_memory(new["w"], global_w["w"])


def test_integer_parameters_are_rounded_not_truncated() -> None:
    global_w = {"count": np.array([0], dtype=np.int64)}
    updates = [ClientUpdate("a", {"count": np.array([1])}, 1),
               ClientUpdate("b", {"count": np.array([2])}, 3)]

    new = FedAvg().aggregate(global_w, updates)

    assert new["count"].tolist() == [2]  # 1.75 rounds to 2, truncation would give 1


def test_trimmed_mean_and_median_hand_computed() -> None:
    # Prepare: per coordinate the five clients say 1, 2, 3, 4, 100
    global_w = weights(w=[0.0])
    updates = [upd(f"c{i}", 1, w=[v]) for i, v in enumerate([4.0, 100.0, 1.0, 3.0, 2.0])]

    # Execute
    trimmed = FedAvg(aggregation="trimmed_mean", trim_ratio=0.2).aggregate(global_w, updates)
    median = FedAvg(aggregation="median").aggregate(global_w, updates)
    mean = FedAvg().aggregate(global_w, updates)

    # Assert: trim floor(0.2*5) = 1 from each end -> mean(2, 3, 4) = 3
    assert trimmed["w"].tolist() == [3.0]
    assert median["w"].tolist() == [3.0]
    assert mean["w"].tolist() == [22.0]


def test_trimmed_mean_with_zero_ratio_is_the_unweighted_mean() -> None:
    global_w = weights(w=[0.0])
    updates = [upd("a", 1, w=[1.0]), upd("b", 100, w=[3.0])]

    new = FedAvg(aggregation="trimmed_mean", trim_ratio=0.0).aggregate(global_w, updates)

    assert new["w"].tolist() == [2.0]


def honest_and_malicious(scale: float = 1e6) -> tuple[dict[str, np.ndarray], list[ClientUpdate]]:
    global_w = weights(w=[0.0, 0.0], b=[0.0])
    honest = [upd("c0", 10, w=[1.0, 1.0], b=[0.5]), upd("c1", 10, w=[1.1, 1.0], b=[0.5]),
              upd("c2", 10, w=[0.9, 1.0], b=[0.5]), upd("c3", 10, w=[1.0, 1.1], b=[0.5])]
    evil = ClientUpdate("evil", {k: v * scale for k, v in honest[0].weights.items()}, 10)
    return global_w, [*honest, evil]


@pytest.mark.parametrize("params", [
    {"aggregation": "median"},
    {"aggregation": "trimmed_mean", "trim_ratio": 0.2},
    {"aggregation": "krum", "num_byzantine": 1},
    {"aggregation": "multi_krum", "num_byzantine": 1},
])
def test_robust_rules_bound_a_scaled_malicious_update(params: dict[str, Any]) -> None:
    # Prepare
    global_w, updates = honest_and_malicious()

    # Execute
    robust = FedAvg(**params).aggregate(global_w, updates)

    # Assert: every coordinate stays within the honest clients' range
    assert robust["w"].min() >= 0.9
    assert robust["w"].max() <= 1.1
    assert robust["b"].tolist() == [0.5]


def test_the_plain_mean_is_dragged_away_by_the_malicious_update() -> None:
    global_w, updates = honest_and_malicious()

    mean = FedAvg().aggregate(global_w, updates)

    assert mean["w"].max() > 1e5


def test_krum_scores_sum_the_n_minus_f_minus_2_closest_squared_distances() -> None:
    # Prepare: 1-D points 0, 1, 3, 7, 20; f = 1 -> sum of the 2 smallest squared distances
    deltas = [{"w": np.array([x])} for x in (0.0, 1.0, 3.0, 7.0, 20.0)]

    # Execute
    scores = krum_scores(deltas, num_byzantine=1)

    # Assert: 0 -> 1+9, 1 -> 1+4, 3 -> 4+9, 7 -> 16+36, 20 -> 169+289
    assert scores.tolist() == [10.0, 5.0, 13.0, 52.0, 458.0]


def test_krum_picks_the_most_central_honest_update() -> None:
    # Prepare: with f=1, n=5 each score sums the 2 smallest squared distances;
    # c0 scores 0.01 + 0.01 = 0.02, c1..c3 score 0.03, evil scores ~1e12
    global_w, updates = honest_and_malicious()
    strategy = FedAvg(aggregation="krum", num_byzantine=1)

    # Execute
    new = strategy.aggregate(global_w, updates)

    # Assert
    assert strategy.last_info is not None and strategy.last_info.selected == ("c0",)
    np.testing.assert_array_equal(new["w"], [1.0, 1.0])


def test_multi_krum_averages_the_best_scored_updates_by_example_count() -> None:
    # Prepare: f=1, n=5, each score sums the 2 smallest squared distances:
    # c0 = .01 + .04 = .05, c1 = .01 + .09 = .10, c2 = .04 + .09 = .13, c3 = .09 + .10 = .19
    global_w = weights(w=[0.0, 0.0])
    updates = [upd("c3", 1, w=[1.0, 1.3]), upd("c1", 30, w=[1.1, 1.0]), upd("evil", 99, w=[1e6, 1e6]),
               upd("c0", 10, w=[1.0, 1.0]), upd("c2", 60, w=[0.8, 1.0])]
    strategy = make_strategy({"name": "MultiKrum", "params": {"num_byzantine": 1, "num_selected": 3}})

    # Execute
    new = strategy.aggregate(global_w, updates)

    # Assert: (10*1.0 + 30*1.1 + 60*0.8)/100 = 0.91, and 1.0
    assert strategy.last_info is not None and strategy.last_info.selected == ("c0", "c1", "c2")
    np.testing.assert_allclose(new["w"], [0.91, 1.0], rtol=1e-12)


def test_multi_krum_defaults_to_n_minus_f_and_drops_the_outlier() -> None:
    global_w, updates = honest_and_malicious()
    strategy = FedAvg(aggregation="multi_krum", num_byzantine=1)

    strategy.aggregate(global_w, updates)

    assert strategy.last_info is not None
    assert sorted(strategy.last_info.selected) == ["c0", "c1", "c2", "c3"]


def test_krum_needs_more_than_2f_plus_2_updates() -> None:
    # Prepare: f = 1 needs n > 4; give 4
    global_w, updates = honest_and_malicious()

    # Execute / Assert
    with pytest.raises(UpdateRejected, match=r"num_byzantine=1 needs more than 2\*1\+2 = 4 .* got 4"):
        FedAvg(aggregation="krum", num_byzantine=1).aggregate(global_w, updates[:4])


def test_multi_krum_cannot_select_more_than_n_minus_f() -> None:
    global_w, updates = honest_and_malicious()

    with pytest.raises(UpdateRejected, match="at most n - f = 4"):
        FedAvg(aggregation="multi_krum", num_byzantine=1, num_selected=5).aggregate(global_w, updates)


def test_clipping_bounds_each_update_before_aggregation() -> None:
    # Prepare: client a moves by (6 | 8), norm 10 -> clipped to (3 | 4); client b moves by (0 | 1)
    global_w = weights(w=[0.0], b=[0.0])
    updates = [upd("a", 1, w=[6.0], b=[8.0]), upd("b", 1, w=[0.0], b=[1.0])]
    strategy = FedAvg(clip_norm=5.0)

    # Execute
    new = strategy.aggregate(global_w, updates)
    alone = FedAvg(clip_norm=5.0).aggregate(global_w, updates[:1])

    # Assert: mean of (3 | 4) and (0 | 1) = (1.5 | 2.5); a alone is moved by exactly norm 5
    np.testing.assert_allclose(new["w"], [1.5], rtol=1e-15)
    np.testing.assert_allclose(new["b"], [2.5], rtol=1e-15)
    assert update_norm(ClientUpdate("x", alone, 1), global_w) == pytest.approx(5.0, rel=1e-12)
    assert strategy.last_info is not None and strategy.last_info.clipped == ("a",)
    assert strategy.last_info.norms == pytest.approx({"a": 10.0, "b": 1.0})


def test_clipping_limits_a_malicious_update_even_with_the_mean() -> None:
    global_w, updates = honest_and_malicious()

    new = FedAvg(clip_norm=2.0).aggregate(global_w, updates)

    assert update_norm(ClientUpdate("x", new, 1), global_w) <= 2.0 + 1e-12


def test_aggregate_rejects_invalid_duplicate_or_missing_updates() -> None:
    global_w = weights(w=[0.0])

    with pytest.raises(UpdateRejected, match=r"'bad'.*NaN"):
        FedAvg().aggregate(global_w, [upd("ok", 1, w=[1.0]), upd("bad", 1, w=[np.nan])])
    with pytest.raises(UpdateRejected, match="'a' sent more than one update"):
        FedAvg().aggregate(global_w, [upd("a", 1, w=[1.0]), upd("a", 1, w=[2.0])])
    with pytest.raises(UpdateRejected, match="no client update"):
        FedAvg().aggregate(global_w, [])


def test_legacy_weighted_mean_helper() -> None:
    new = weighted_mean([upd("a", 1, np.float32, w=[0.0]), upd("b", 3, np.float32, w=[4.0])])

    assert new["w"].tolist() == [3.0] and new["w"].dtype == np.float32


# --------------------------------------------------------------------------- server optimisers


def two_rounds(strategy: RobustStrategy, first: float, second_delta: float) -> tuple[float, float]:
    """Round 1: global 1.0, client says ``first``; round 2: client says new global + second_delta."""
    g1 = strategy.aggregate(weights(w=[1.0]), [upd("c", 5, w=[first])])
    r1 = float(g1["w"][0])
    g2 = strategy.aggregate(g1, [upd("c", 5, w=[r1 + second_delta])])
    return r1, float(g2["w"][0])


def test_fedavgm_two_steps_hand_computed() -> None:
    # Round 1: d = 2, v = 2, w = 1 + 0.5*2 = 2
    # Round 2: d = 0.5, v = 0.9*2 + 0.5 = 2.3, w = 2 + 0.5*2.3 = 3.15
    r1, r2 = two_rounds(FedAvgM(server_learning_rate=0.5, server_momentum=0.9), 3.0, 0.5)

    assert r1 == pytest.approx(2.0, rel=1e-15)
    assert r2 == pytest.approx(3.15, rel=1e-15)


def test_fedavgm_without_momentum_is_fedavg() -> None:
    global_w, updates = honest_and_malicious(scale=3.0)

    a = FedAvgM(server_momentum=0.0, server_learning_rate=1.0).aggregate(global_w, updates)
    b = FedAvg().aggregate(global_w, updates)

    np.testing.assert_allclose(a["w"], b["w"], rtol=1e-15)


def test_fedadam_two_steps_hand_computed() -> None:
    # Defaults eta=0.1, b1=0.9, b2=0.99, tau=1e-9.
    # Round 1: d = 1, m = 0.1, v = 0.01, w = 1 + 0.1*0.1/(0.1 + 1e-9)
    # Round 2: d = 0.5, m = 0.09 + 0.05 = 0.14, v = 0.0099 + 0.0025 = 0.0124
    r1, r2 = two_rounds(FedAdam(), 2.0, 0.5)

    assert r1 == pytest.approx(1 + 0.1 * 0.1 / (0.1 + 1e-9), rel=1e-12)
    assert r2 == pytest.approx(r1 + 0.1 * 0.14 / (np.sqrt(0.0124) + 1e-9), rel=1e-12)


def test_fedadam_bias_correction_scales_the_step() -> None:
    # t=1: eta*sqrt(1-0.99)/(1-0.9) = 0.1; t=2: eta*sqrt(1-0.9801)/(1-0.81)
    r1, r2 = two_rounds(FedAdam(bias_correction=True), 2.0, 0.5)

    assert r1 == pytest.approx(1 + 0.1 * 0.1 / (0.1 + 1e-9), rel=1e-12)
    eta2 = 0.1 * np.sqrt(0.0199) / 0.19
    assert r2 == pytest.approx(r1 + eta2 * 0.14 / (np.sqrt(0.0124) + 1e-9), rel=1e-12)


def test_fedyogi_two_steps_hand_computed() -> None:
    # Defaults eta=0.01, b1=0.9, b2=0.99, tau=1e-3.
    # Round 1: d = 1, m = 0.1, v = 0 - 0.01*1*sign(0 - 1) = 0.01, w = 1 + 0.01*0.1/(0.1 + 0.001)
    # Round 2: d = 0.05, m = 0.09 + 0.005 = 0.095, v = 0.01 - 0.01*0.0025*sign(0.01 - 0.0025)
    #          = 0.009975 (Adam would give 0.009925)
    r1, r2 = two_rounds(FedYogi(), 2.0, 0.05)

    assert r1 == pytest.approx(1 + 0.01 * 0.1 / 0.101, rel=1e-12)
    assert r2 == pytest.approx(r1 + 0.01 * 0.095 / (np.sqrt(0.009975) + 0.001), rel=1e-12)


def test_fedadagrad_two_steps_hand_computed() -> None:
    # Defaults eta=0.1, b1=0 (m = d), tau=1e-9.
    # Round 1: d = 1, v = 1, w = 1 + 0.1*1/(1 + 1e-9)
    # Round 2: d = 0.5, v = 1.25, w += 0.1*0.5/(sqrt(1.25) + 1e-9)
    r1, r2 = two_rounds(FedAdagrad(), 2.0, 0.5)

    assert r1 == pytest.approx(1 + 0.1 / (1 + 1e-9), rel=1e-12)
    assert r2 == pytest.approx(r1 + 0.05 / (np.sqrt(1.25) + 1e-9), rel=1e-12)


def test_optimisers_use_the_selected_aggregation_rule() -> None:
    # Prepare: median pseudo-gradient is 1 per coordinate, the outlier must not leak in
    global_w, updates = honest_and_malicious()

    # Execute
    new = FedAvgM(server_momentum=0.0, aggregation="median").aggregate(global_w, updates)

    # Assert
    assert new["w"].max() <= 1.1


# --------------------------------------------------------------------------- state round trip

OPTIMISER_CONFIGS = [
    {"name": "FedAvgM", "params": {"server_momentum": 0.7, "clip_norm": 3.0}},
    {"name": "FedAdam", "params": {"eta": 0.05, "aggregation": "trimmed_mean", "trim_ratio": 0.2}},
    {"name": "FedAdam", "params": {"bias_correction": True}},
    {"name": "FedYogi", "params": {"aggregation": "median"}},
    {"name": "FedAdagrad", "params": {"beta_1": 0.5, "aggregation": "krum", "num_byzantine": 1}},
]


def random_rounds(seed: int, rounds: int) -> list[list[ClientUpdate]]:
    rng = np.random.default_rng(seed)
    return [[ClientUpdate(f"c{i}", {"w": rng.normal(size=(3, 2)).astype(np.float32),
                                    "b": rng.normal(size=2).astype(np.float32)},
                          int(rng.integers(1, 50))) for i in range(5)] for _ in range(rounds)]


@pytest.mark.parametrize("config", OPTIMISER_CONFIGS, ids=lambda c: c["name"])
def test_restart_from_state_dict_resumes_exactly(config: dict[str, Any]) -> None:
    # Prepare
    start = {"w": np.zeros((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    rounds = random_rounds(seed=3, rounds=4)
    uninterrupted = make_strategy(config)
    expected = start
    for updates in rounds:
        expected = uninterrupted.aggregate(expected, updates)

    # Execute: two rounds, checkpoint, a fresh coordinator restores and does the rest
    first = make_strategy(config)
    current = start
    for updates in rounds[:2]:
        current = first.aggregate(current, updates)
    checkpoint = first.state_dict()
    restarted = make_strategy(config)
    restarted.load_state_dict(checkpoint)
    for updates in rounds[2:]:
        current = restarted.aggregate(current, updates)

    # Assert
    assert all(np.array_equal(current[k], expected[k]) for k in expected)
    final, again = uninterrupted.state_dict(), restarted.state_dict()
    assert final.keys() == again.keys()
    assert all(np.array_equal(final[k], again[k]) for k in final)
    assert int(final["step"]) == 4


def test_state_dict_keys_name_slot_and_parameter() -> None:
    strategy = FedAdam()
    strategy.aggregate(weights(w=[0.0], b=[0.0]), [upd("c", 1, w=[1.0], b=[2.0])])

    assert set(strategy.state_dict()) == {"m/w", "v/w", "m/b", "v/b", "step"}
    momentum = FedAvgM()
    momentum.aggregate(weights(w=[0.0]), [upd("c", 1, w=[1.0])])
    assert set(momentum.state_dict()) == {"momentum/w", "step"}


def test_state_dict_is_a_copy_and_empty_before_the_first_round() -> None:
    # Prepare
    strategy = FedAdam()
    assert strategy.state_dict() == {}
    strategy.aggregate(weights(w=[0.0]), [upd("c", 1, w=[1.0])])

    # Execute
    state = strategy.state_dict()
    state["m/w"][:] = 1e9

    # Assert
    assert strategy.state_dict()["m/w"].tolist() == pytest.approx([0.1])


def test_loading_another_strategys_state_is_a_config_error() -> None:
    adam = FedAdam()
    adam.aggregate(weights(w=[0.0]), [upd("c", 1, w=[1.0])])

    with pytest.raises(ConfigError, match=r"cannot restore FedAvgM .*unexpected key 'm/w'"):
        FedAvgM().load_state_dict(adam.state_dict())
    with pytest.raises(ConfigError, match="FedAvg keeps no optimiser state"):
        FedAvg().load_state_dict(adam.state_dict())
    with pytest.raises(ConfigError, match="lacks slot"):
        FedAdam().load_state_dict({"m/w": np.zeros(1), "step": np.array(1)})
    with pytest.raises(ConfigError, match="'step' must be a positive integer"):
        FedAdam().load_state_dict({"m/w": np.zeros(1), "v/w": np.zeros(1)})


def test_state_for_another_model_is_rejected_at_aggregation() -> None:
    strategy = FedAdam()
    strategy.load_state_dict({"m/w": np.zeros(2), "v/w": np.zeros(2), "step": np.array(4)})

    with pytest.raises(ConfigError, match=r"'m/w' has shape \(2,\), parameter has \(3,\)"):
        strategy.aggregate(weights(w=[0.0, 0.0, 0.0]), [upd("c", 1, w=[1.0, 1.0, 1.0])])


def test_a_failed_round_leaves_the_optimiser_state_untouched() -> None:
    # Prepare
    strategy = FedAdam(aggregation="krum", num_byzantine=1)
    global_w, updates = honest_and_malicious()
    strategy.aggregate(global_w, updates)
    before = strategy.state_dict()

    # Execute
    with pytest.raises(UpdateRejected):
        strategy.aggregate(global_w, updates[:3])

    # Assert
    after = strategy.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(("config", "cls", "rule"), [
    (None, FedAvg, "mean"),
    ({"name": "fedavg"}, FedAvg, "mean"),
    ({"name": "FedAvg", "params": {"aggregation": "median", "clip_norm": 5.0}}, FedAvg, "median"),
    ({"name": "FEDADAM", "params": {"eta": 0.05, "aggregation": "trimmed_mean", "trim_ratio": 0.2}},
     FedAdam, "trimmed_mean"),
    ({"name": "FedAvgM"}, FedAvgM, "mean"),
    ({"name": "fedyogi"}, FedYogi, "mean"),
    ({"name": "FedAdagrad"}, FedAdagrad, "mean"),
    ({"name": "median"}, FedAvg, "median"),
    ({"name": "TrimmedMean", "params": {"trim_ratio": 0.1}}, FedAvg, "trimmed_mean"),
    ({"name": "krum", "params": {"num_byzantine": 2}}, FedAvg, "krum"),
    ({"name": "multi_krum", "params": {"aggregation": "multi_krum"}}, FedAvg, "multi_krum"),
    ("FedAdam", FedAdam, "mean"),
])
def test_make_strategy_builds_the_named_strategy(config: Any, cls: type, rule: str) -> None:
    strategy = make_strategy(config)

    assert type(strategy) is cls
    assert strategy.rule.aggregation == rule


def test_make_strategy_passes_the_parameters_through() -> None:
    strategy = make_strategy({"name": "FedAdam", "params": {"eta": 0.05, "aggregation": "trimmed_mean",
                                                            "trim_ratio": 0.2, "clip_norm": 5.0}})

    assert strategy.params.eta == 0.05  # type: ignore[attr-defined]
    assert strategy.rule.trim_ratio == 0.2 and strategy.rule.clip_norm == 5.0


def test_defaults_follow_flower() -> None:
    adam, yogi, adagrad, avgm = FedAdam().params, FedYogi().params, FedAdagrad().params, FedAvgM().params

    assert (adam.eta, adam.beta_1, adam.beta_2, adam.tau) == (0.1, 0.9, 0.99, 1e-9)
    assert (yogi.eta, yogi.beta_1, yogi.beta_2, yogi.tau) == (0.01, 0.9, 0.99, 1e-3)
    assert (adagrad.eta, adagrad.beta_1, adagrad.tau) == (0.1, 0.0, 1e-9)
    assert (avgm.server_learning_rate, avgm.server_momentum) == (1.0, 0.9)


def test_unknown_strategy_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        make_strategy({"name": "FedMagic"})

    assert "'FedMagic'" in info.value.message
    assert all(name in info.value.message for name in STRATEGY_NAMES)
    assert info.value.details[0]["field"] == "strategy.name"


def config_error(config: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make_strategy(config)
    return info.value


def test_bad_params_name_each_field_and_reason() -> None:
    # Execute
    err = config_error({"name": "FedAdam", "params": {"aggregation": "trimmed_mean", "trim_ratio": 0.5,
                                                      "eta": 0, "beta_2": "0.9", "lr": 1}})

    # Assert
    assert "strategy.params.trim_ratio: must be < 0.5" in err.message
    assert "strategy.params.eta: must be > 0.0" in err.message
    assert "strategy.params.beta_2: must be a valid number" in err.message
    assert "strategy.params.lr: unknown parameter" in err.message
    assert {d["field"] for d in err.details} == {"strategy.params.trim_ratio", "strategy.params.eta",
                                                 "strategy.params.beta_2", "strategy.params.lr"}
    assert err.code == "invalid_config"


@pytest.mark.parametrize(("config", "expected"), [
    ({"name": "FedAvg", "params": {"aggregation": "average"}},
     "strategy.params.aggregation: must be one of: mean, median, trimmed_mean, krum, multi_krum"),
    ({"name": "FedAvg", "params": {"aggregation": "median", "trim_ratio": 0.1}},
     "strategy.params.trim_ratio: only used with aggregation 'trimmed_mean'"),
    ({"name": "FedAvg", "params": {"num_byzantine": 1}},
     "strategy.params.num_byzantine: only used with aggregation 'krum' or 'multi_krum'"),
    ({"name": "Krum", "params": {"num_selected": 2}},
     "strategy.params.num_selected: only used with aggregation 'multi_krum'"),
    ({"name": "MultiKrum", "params": {"num_byzantine": -1}}, "strategy.params.num_byzantine: must be >= 0"),
    ({"name": "FedAvg", "params": {"clip_norm": float("inf")}},
     "strategy.params.clip_norm: must be a finite number"),
    ({"name": "FedAvgM", "params": {"server_momentum": 1.0}},
     "strategy.params.server_momentum: must be < 1.0"),
    ({"name": "FedAdagrad", "params": {"beta_2": 0.9}}, "strategy.params.beta_2: unknown parameter"),
    ({"name": "Median", "params": {"aggregation": "mean"}},
     "strategy.params.aggregation: must be 'median' (or left out) with strategy Median"),
    ({"name": "FedAvg", "params": [1, 2]}, "strategy.params: must be a valid dictionary"),
    ({"name": "FedAvg", "options": {}}, "strategy.options: unknown key"),
])
def test_config_errors_name_the_field(config: Any, expected: str) -> None:
    assert expected in config_error(config).message


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"strategy\.params\.trim_ratio: must be >= 0\.0"):
        FedAvg(aggregation="trimmed_mean", trim_ratio=-0.1)
