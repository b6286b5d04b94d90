"""Round policy arithmetic and the provenance check that keeps late updates out."""

from __future__ import annotations

import pytest

from jupyter_fed.coordinator.dispatch import check_provenance
from jupyter_fed.coordinator.engine import Policy
from jupyter_fed.errors import UpdateRejected
from jupyter_fed.wire import TaskSpec

SPEC = TaskSpec(task_id="s1.a0.r3.fit.c0", session_id="s1", round=3, package="ffnet", step="fit",
                datasets={"train": "d"})


def test_a_result_of_this_task_passes() -> None:
    check_provenance({"task_id": "s1.a0.r3.fit.c0", "session_id": "s1", "round": "3"}, SPEC)


@pytest.mark.parametrize("meta", [
    {"task_id": "s1.a0.r2.fit.c0", "session_id": "s1", "round": "2"},   # late: an earlier round
    {"task_id": "s1.a0.r3.fit.c0", "session_id": "s9", "round": "3"},   # another session's
    {},                                                                 # no provenance at all
])
def test_late_foreign_or_unlabelled_results_are_rejected(meta: dict[str, str]) -> None:
    with pytest.raises(UpdateRejected, match="not aggregated"):
        check_provenance(meta, SPEC)


@pytest.mark.parametrize(("minimum", "rate", "active", "required"), [
    (2, 0.0, 3, 2), (2, 1.0, 3, 3), (1, 0.5, 5, 3), (3, 0.5, 4, 3),
])
def test_required_clients_is_the_stricter_of_minimum_and_rate(minimum, rate, active,
                                                              required) -> None:
    assert Policy(min_num_clients=minimum, min_completion_rate=rate).required(active) == required
