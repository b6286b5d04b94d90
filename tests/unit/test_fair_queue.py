"""Fair queueing between principals, and ffnet's memory estimate (both pure functions)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from jupyter_fed.errors import RateLimited
from jupyter_fed.packages import get_package
from jupyter_fed.runner.queue import FairQueue


@dataclass
class _Job:
    key: str
    principal: str


def test_principals_are_served_in_turn_and_each_is_capped() -> None:
    q: FairQueue[_Job] = FairQueue(max_running=1, max_queued=10)
    for i in range(3):
        q.push(_Job(f"a{i}", "alice"))
    q.push(_Job("b0", "bob"))
    q.push(_Job("c0", "carol"))

    order = [q.pop().key, q.pop().key, q.pop().key]
    assert order == ["a0", "b0", "c0"]
    assert q.pop() is None and not q.runnable()  # alice is at her cap, the others are empty
    q.finished("alice")
    assert q.pop().key == "a1"


def test_a_waiting_job_can_be_removed_and_queues_are_bounded() -> None:
    q: FairQueue[_Job] = FairQueue(max_running=2, max_queued=2)
    q.push(_Job("a0", "alice"))
    q.push(_Job("a1", "alice"))
    with pytest.raises(RateLimited):
        q.push(_Job("a2", "alice"))
    assert q.remove("a0").key == "a0" and q.remove("a0") is None
    assert q.waiting("alice") == 1


def _params(hidden: list[int], **extra: object) -> dict[str, object]:
    return {"model_config": {"model": {"params": {"input_size": 15, "hidden_layer_sizes": hidden,
                                                  "output_size": 2}}, **extra}}


def test_ffnet_estimates_its_memory_from_the_config() -> None:
    ffnet = get_package("ffnet")
    rows = {"train": 20_000, "test": 4_000}
    small = ffnet.resource_estimate_of("fit", _params([6, 6, 6]), rows)
    huge = ffnet.resource_estimate_of("fit", _params([25_000, 25_000]), rows)
    dp = ffnet.resource_estimate_of("fit", _params([2000], differential_privacy_params={
        "epsilon": 1.0, "max_grad_norm": 1.0}), rows)
    assert small < 16 * 2**20
    assert huge > 625_000_000 * 4 * 4  # four float32 copies of 625 million weights, at least
    assert dp > ffnet.resource_estimate_of("fit", _params([2000]), rows)
