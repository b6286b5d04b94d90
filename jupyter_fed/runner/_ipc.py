"""Messages between the runner and its worker processes: a JSON header and optional raw bytes.

One frame is ``<4-byte header length><8-byte payload length><JSON header><payload>``. Arrays
travel as safetensors bytes in the payload, never pickled: the worker is the same trust domain,
but one encoding for arrays everywhere keeps the rule simple to check.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

_PREFIX = struct.Struct("!IQ")
MAX_HEADER = 16 * 2**20
"""Largest JSON header accepted (outputs of a step are JSON and travel here)."""


def head(header: dict[str, Any], payload_size: int = 0) -> bytes:
    """The frame up to its payload: send the payload after it (no copy of a large payload)."""
    data = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(len(data), payload_size) + data


def pack(header: dict[str, Any], payload: bytes = b"") -> bytes:
    return head(header, len(payload)) + payload


def _header(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a frame header must be a JSON object")
    return value


# -- the worker's side: blocking sockets ------------------------------------------------------
def send(sock: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
    sock.sendall(pack(header, payload))


def _exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("the other end closed the connection")
        got += k
    return bytes(buf)


def recv(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    """The next frame; ``EOFError`` when the runner has gone away."""
    hlen, plen = _PREFIX.unpack(_exactly(sock, _PREFIX.size))
    if hlen > MAX_HEADER:
        raise ValueError("frame header too large")
    header = _header(_exactly(sock, hlen))
    return header, _exactly(sock, plen) if plen else b""


# -- the runner's side: asyncio streams -------------------------------------------------------
async def read(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    """The next frame from a worker; ``asyncio.IncompleteReadError`` when it died."""
    hlen, plen = _PREFIX.unpack(await reader.readexactly(_PREFIX.size))
    if hlen > MAX_HEADER:
        raise ValueError("frame header too large")
    header = _header(await reader.readexactly(hlen))
    return header, await reader.readexactly(plen) if plen else b""
