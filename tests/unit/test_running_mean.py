"""Aggregation as answers arrive: the running mean, and the engine's in-order hand-over."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_fed.coordinator.engine import _InOrder
from jupyter_fed.errors import UpdateRejected
from jupyter_fed.packages import Answer
from jupyter_fed.strategies import ClientUpdate, make_strategy


def _updates(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], list[ClientUpdate]]:
    rng = np.random.default_rng(seed)
    g = {"w": rng.normal(size=(4, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}
    ups = [ClientUpdate(f"c{i}", {k: (v + rng.normal(0, 0.1 * (i + 1), v.shape)).astype(v.dtype)
                                  for k, v in g.items()}, int(rng.integers(10, 500)))
           for i in range(n)]
    return g, ups


@pytest.mark.parametrize("strategy", [("FedAvg", {}), ("FedAvg", {"clip_norm": 0.05}),
                                      ("FedAdam", {"eta": 0.01})])
def test_update_by_update_equals_the_example_weighted_mean(strategy) -> None:
    g, ups = _updates(7)
    name, params = strategy
    batch, running = (make_strategy({"name": name, "params": params}) for _ in range(2))

    acc = running.running(g)
    for u in ups:
        acc.add(u)
    got = running.aggregate_running(g, acc)
    want = batch.aggregate(g, ups)

    assert all(np.array_equal(got[k], want[k]) for k in g)
    if name == "FedAvg" and not params:  # and that is FedAvg's formula, computed independently
        counts = np.array([u.num_examples for u in ups], float)
        mean = {k: sum(c * u.weights[k].astype(float) for c, u in zip(counts, ups, strict=True))
                / counts.sum() for k in g}
        assert all(np.allclose(got[k], mean[k], rtol=1e-6, atol=1e-7) for k in g)


def test_rules_that_need_every_update_have_no_running_form() -> None:
    g, _ = _updates(1)
    for rule in ({"aggregation": "median"}, {"aggregation": "krum", "num_byzantine": 1}):
        assert make_strategy({"name": "FedAvg", "params": rule}).running(g) is None


def test_a_running_mean_refuses_a_second_update_from_one_client_and_a_misfit() -> None:
    g, ups = _updates(2)
    acc = make_strategy({"name": "FedAvg", "params": {}}).running(g)
    acc.add(ups[0])
    with pytest.raises(UpdateRejected, match="more than one update"):
        acc.add(ups[0])
    with pytest.raises(UpdateRejected, match="shape"):
        acc.add(ClientUpdate("c9", {"w": np.zeros((2, 2), np.float32), "b": g["b"]}, 5))


def test_answers_are_folded_in_client_order_whatever_order_they_arrive_in() -> None:
    folded: list[str] = []
    order = _InOrder(lambda a: folded.append(a.client_id))
    answers = [Answer(f"c{i}", {}, {"w": np.ones(2)}, 1, 0.0) for i in range(5)]

    order.arrived(3, answers[3])
    order.arrived(1, answers[1])
    assert folded == []  # c0 is slower: nothing can be added before it
    order.arrived(0, answers[0])
    assert folded == ["c0", "c1"]
    order.arrived(2, None)  # failed: skipped, and c3 waiting behind it goes in
    assert folded == ["c0", "c1", "c3"]
    order.arrived(4, answers[4])

    assert folded == ["c0", "c1", "c3", "c4"]
    assert not order.waiting
    assert all(a.tensors == {} for i, a in enumerate(answers) if i != 2)  # let go once folded


def test_a_fold_that_raises_is_kept_for_the_step_and_stops_folding() -> None:
    seen: list[str] = []

    def fold(a: Answer) -> None:
        seen.append(a.client_id)
        raise ValueError("boom")

    order = _InOrder(fold)
    order.arrived(0, Answer("c0", {}, {}, 1, 0.0))
    order.arrived(1, Answer("c1", {}, {}, 1, 0.0))

    assert seen == ["c0"] and isinstance(order.error, ValueError)
