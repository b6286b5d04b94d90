"""validate_update rejects every kind of bad client update by client name; update_norm is the delta's L2."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_fed.errors import UpdateRejected
from jupyter_fed.strategies import ClientUpdate, update_norm, validate_update

CLIENT = "runner-7/hospital_a"


def reference() -> dict[str, np.ndarray]:
    return {"dense.weight": np.zeros((2, 3), dtype=np.float32),
            "dense.bias": np.zeros(3, dtype=np.float32)}


def good_weights() -> dict[str, np.ndarray]:
    return {"dense.weight": np.ones((2, 3), dtype=np.float32),
            "dense.bias": np.full(3, 0.5, dtype=np.float32)}


def rejection(update: ClientUpdate, max_examples: int | None = None) -> UpdateRejected:
    with pytest.raises(UpdateRejected) as info:
        validate_update(update, reference(), max_examples=max_examples)
    return info.value


def test_a_well_formed_update_passes() -> None:
    # Prepare
    update = ClientUpdate(CLIENT, good_weights(), 120)

    # Execute
    result = validate_update(update, reference(), max_examples=120)

    # Assert
    assert result is None


def test_numpy_integer_example_count_is_accepted() -> None:
    validate_update(ClientUpdate(CLIENT, good_weights(), np.int64(5)), reference(), max_examples=10)


def test_missing_parameter_is_rejected_with_client_and_name() -> None:
    # Prepare
    weights = good_weights()
    del weights["dense.bias"]

    # Execute
    err = rejection(ClientUpdate(CLIENT, weights, 10))

    # Assert
    assert CLIENT in err.message
    assert "missing parameter(s) 'dense.bias'" in err.message
    assert err.details == [{"client_id": CLIENT, "field": "weights",
                            "error": "missing parameter(s) 'dense.bias'"}]


def test_extra_parameter_is_rejected() -> None:
    # Prepare
    weights = good_weights() | {"head.weight": np.zeros(1, dtype=np.float32)}

    # Execute
    err = rejection(ClientUpdate(CLIENT, weights, 10))

    # Assert
    assert CLIENT in err.message
    assert "unexpected parameter(s) 'head.weight'" in err.message


def test_wrong_shape_is_rejected() -> None:
    # Prepare
    weights = good_weights() | {"dense.weight": np.ones((3, 2), dtype=np.float32)}

    # Execute
    err = rejection(ClientUpdate(CLIENT, weights, 10))

    # Assert
    assert CLIENT in err.message
    assert "'dense.weight' has shape (3, 2), expected (2, 3)" in err.message


def test_wrong_dtype_is_rejected() -> None:
    # Prepare
    weights = good_weights() | {"dense.bias": np.zeros(3, dtype=np.float64)}

    # Execute
    err = rejection(ClientUpdate(CLIENT, weights, 10))

    # Assert
    assert CLIENT in err.message
    assert "'dense.bias' has dtype float64, expected float32" in err.message


def test_a_list_instead_of_an_array_is_rejected() -> None:
    weights = good_weights() | {"dense.bias": [0.0, 0.0, 0.0]}

    err = rejection(ClientUpdate(CLIENT, weights, 10))

    assert CLIENT in err.message
    assert "'dense.bias' is a list, not a numpy array" in err.message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected(bad: float) -> None:
    # Prepare
    weights = good_weights()
    weights["dense.weight"][1, 2] = bad

    # Execute
    err = rejection(ClientUpdate(CLIENT, weights, 10))

    # Assert
    assert CLIENT in err.message
    assert "'dense.weight' contains 1 NaN or Inf value(s)" in err.message


@pytest.mark.parametrize(("count", "reason"), [
    (10.0, "num_examples must be an integer, got float"),
    ("10", "num_examples must be an integer, got str"),
    (True, "num_examples must be an integer, got bool"),
    (None, "num_examples must be an integer, got NoneType"),
    (0, "num_examples must be positive, got 0"),
    (-3, "num_examples must be positive, got -3"),
])
def test_bad_example_counts_are_rejected(count: object, reason: str) -> None:
    # Execute
    err = rejection(ClientUpdate(CLIENT, good_weights(), count))  # type: ignore[arg-type]

    # Assert
    assert CLIENT in err.message
    assert reason in err.message


def test_example_count_above_the_registered_rows_is_rejected() -> None:
    # Execute
    err = rejection(ClientUpdate(CLIENT, good_weights(), 501), max_examples=500)

    # Assert
    assert CLIENT in err.message
    assert "num_examples 501 exceeds the 500 rows registered" in err.message


def test_example_count_is_unbounded_without_max_examples() -> None:
    validate_update(ClientUpdate(CLIENT, good_weights(), 10**9), reference())


def test_every_problem_is_reported_at_once() -> None:
    # Prepare
    weights = good_weights() | {"dense.bias": np.full(3, np.nan, dtype=np.float32),
                                "extra": np.zeros(1, dtype=np.float32)}

    # Execute
    err = rejection(ClientUpdate(CLIENT, weights, 0))

    # Assert
    fields = [d["field"] for d in err.details]
    assert fields == ["num_examples", "weights", "weights.dense.bias"]
    assert all(d["client_id"] == CLIENT for d in err.details)
    assert err.code == "update_rejected"


def test_validation_does_not_modify_the_update() -> None:
    weights = good_weights()
    before = {k: v.copy() for k, v in weights.items()}

    validate_update(ClientUpdate(CLIENT, weights, 3), reference())

    assert all(np.array_equal(weights[k], before[k]) for k in before)


def test_update_norm_is_the_l2_norm_of_the_delta_over_all_parameters() -> None:
    # Prepare: delta is 3 in one coordinate and 4 in another, in different parameters
    ref = {"a": np.array([1.0, 1.0], dtype=np.float32), "b": np.array([2.0], dtype=np.float32)}
    weights = {"a": np.array([4.0, 1.0], dtype=np.float32), "b": np.array([6.0], dtype=np.float32)}

    # Execute
    norm = update_norm(ClientUpdate(CLIENT, weights, 1), ref)

    # Assert
    assert norm == pytest.approx(5.0, abs=1e-12)


def test_update_norm_of_an_unchanged_model_is_zero() -> None:
    assert update_norm(ClientUpdate(CLIENT, reference(), 1), reference()) == 0.0


def test_update_norm_rejects_a_mismatched_update() -> None:
    weights = good_weights()
    del weights["dense.weight"]

    with pytest.raises(UpdateRejected, match=CLIENT):
        update_norm(ClientUpdate(CLIENT, weights, 1), reference())
