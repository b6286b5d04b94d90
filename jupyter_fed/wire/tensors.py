"""Named arrays on the wire: safetensors bytes, never pickle."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jupyter_fed.errors import FedError


class TensorDecodeError(FedError):
    code = "bad_tensors"
    status = 400


def encode(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialise named arrays (any numeric dtype) to safetensors bytes."""
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                metadata=dict(metadata) if metadata else None)


def decode(data: bytes) -> dict[str, np.ndarray]:
    """Parse safetensors bytes; malformed input raises ``TensorDecodeError`` rather than crashing."""
    from safetensors.numpy import load

    try:
        return dict(load(data))
    except Exception as exc:  # safetensors raises several types for bad headers
        raise TensorDecodeError(f"could not decode tensors: {exc}",
                                "the payload must be safetensors bytes") from None
