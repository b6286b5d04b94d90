"""Tensor codec, wire models and the error round trip."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_fed.errors import (
    AuthError,
    ConfigError,
    DatasetError,
    FedError,
    NotFoundError,
    PermissionDenied,
    error_from_body,
)
from jupyter_fed.wire import TaskSpec, decode, encode
from jupyter_fed.wire.tensors import TensorDecodeError


def test_safetensors_round_trip_keeps_names_dtypes_shapes_and_values() -> None:
    arrays = {"0.weight": np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32),
              "counts": np.arange(5, dtype=np.int64), "scalar": np.array(2.5)}

    back = decode(encode(arrays))

    assert set(back) == set(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)


def test_non_contiguous_arrays_are_encoded() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4).T
    np.testing.assert_array_equal(decode(encode({"a": a}))["a"], a)


def test_garbage_bytes_raise_a_fed_error() -> None:
    with pytest.raises(TensorDecodeError):
        decode(b"\x00\x01 not safetensors")


@pytest.mark.parametrize("cls", [ConfigError, AuthError, PermissionDenied, NotFoundError, DatasetError])
def test_error_bodies_rebuild_the_same_subclass(cls: type[FedError]) -> None:
    err = cls("went wrong", "do this", details=[{"field": "a"}])

    back = error_from_body(err.to_body(), err.status)

    assert type(back) is cls
    assert (back.message, back.hint, back.details) == ("went wrong", "do this", [{"field": "a"}])


def test_unknown_codes_fall_back_on_the_status_and_keep_the_code() -> None:
    back = error_from_body({"code": "privacy_budget_exceeded", "message": "m"}, 403)
    assert isinstance(back, PermissionDenied)
    assert back.code == "privacy_budget_exceeded"


def test_task_spec_rejects_unsafe_ids() -> None:
    with pytest.raises(ValueError):
        TaskSpec(task_id="../../etc", session_id="s", round=0, package="p", step="s", datasets={})
