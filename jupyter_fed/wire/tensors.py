"""Named arrays on the wire: safetensors bytes, never pickle."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import numpy as np

from jupyter_fed.errors import FedError


class TensorDecodeError(FedError):
    code = "bad_tensors"
    status = 400


_SCALARS = "__scalars__"


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header (8-byte length, then JSON)."""
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + size]).get("__metadata__") or {}


def metadata(data: bytes) -> dict[str, str]:
    """String metadata stored beside the arrays (e.g. the round a model comes from)."""
    try:
        return {k: v for k, v in _metadata(data).items() if k != _SCALARS}
    except (struct.error, ValueError):
        raise TensorDecodeError("could not read tensor metadata", "") from None


def encode(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialise named arrays (any numeric dtype) to safetensors bytes."""
    from safetensors.numpy import save

    meta = dict(metadata or {})
    scalars = [k for k, v in arrays.items() if np.ndim(v) == 0]
    if scalars:  # safetensors stores 0-d arrays as shape (1,); remember which were scalars
        meta[_SCALARS] = json.dumps(scalars)
    return save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=meta or None)


def decode(data: bytes) -> dict[str, np.ndarray]:
    """Parse safetensors bytes; malformed input raises ``TensorDecodeError`` rather than crashing."""
    from safetensors.numpy import load

    try:
        arrays = dict(load(data))
        scalars = _metadata(data).get(_SCALARS) if arrays else None
        for k in json.loads(scalars) if scalars else []:
            arrays[k] = arrays[k].reshape(())
        return arrays
    except Exception as exc:  # safetensors raises several types for bad headers
        raise TensorDecodeError(f"could not decode tensors: {exc}",
                                "the payload must be safetensors bytes") from None
