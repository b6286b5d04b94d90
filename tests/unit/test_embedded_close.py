"""Closing an embedded coordinator gives its event loop's file descriptors back.

Each ``connect(embedded=True)`` made a loop on a thread and stopped it on ``close()`` without
closing it: six descriptors (its selector, wake-up pipe and signal fds) stayed open per client,
and a long test run reached descriptor numbers ``select()`` refuses (above 1023).
"""

from __future__ import annotations

import os
from pathlib import Path

import jupyter_fed


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_an_embedded_coordinator_closes_what_it_opened(tmp_path: Path) -> None:
    # warm-up: the first client imports and opens what a process keeps (logging, caches)
    jupyter_fed.connect(embedded=True, state_dir=tmp_path / "warm").close()
    before = _open_fds()
    for i in range(5):
        client = jupyter_fed.connect(embedded=True, state_dir=tmp_path / f"c{i}")
        client.sessions()
        client.close()
    assert _open_fds() - before <= 1
