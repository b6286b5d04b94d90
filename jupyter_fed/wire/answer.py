"""A finished step's status and its arrays in one HTTP answer, for ``POST /v1/tasks?inline=``.

Fetching a step's arrays used to take a request of its own after the (long-polled) status; for
the many short steps of a vertical session that request is a sizeable share of each step. A
caller that may read results (``read_model``) can ask the submission to answer, when the step
succeeds within ``wait`` with arrays of at most ``inline`` bytes, with both at once::

    4 bytes: length n of the status JSON (big-endian) | n bytes: TaskStatus JSON | safetensors

The arrays are exactly the bytes ``GET /v1/tasks/{id}/result`` would return (their provenance
metadata included); anything else is answered as before, JSON status only.
"""

from __future__ import annotations

import struct

__all__ = ["MEDIA_TYPE", "pack", "unpack"]

MEDIA_TYPE = "application/vnd.jupyter-fed.task-result"
_HEAD = struct.Struct(">I")


def pack(status_json: bytes, result: bytes) -> bytes:
    return _HEAD.pack(len(status_json)) + status_json + result


def unpack(data: bytes) -> tuple[bytes, bytes]:
    """(status JSON, safetensors bytes); ``ValueError`` when the framing does not hold."""
    if len(data) < _HEAD.size:
        raise ValueError("answer too short")
    (n,) = _HEAD.unpack_from(data)
    if n > len(data) - _HEAD.size:
        raise ValueError("status length beyond the answer")
    return data[_HEAD.size:_HEAD.size + n], data[_HEAD.size + n:]
