"""Thirty short sessions back to back: no growth in descriptors, threads or memory."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sessions import start

SESSIONS = 30


def _proc(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return {"fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(fields["Threads"]),
            "rss_mb": int(fields["VmRSS"].split()[0]) // 1024}


def test_thirty_sessions_leak_nothing(client3, healthy) -> None:
    pids = {"coordinator": os.getpid(), **{n: p.pid for n, p in healthy.processes.items()}}
    for _ in range(3):  # warm up: imports, connection pools, caches
        assert start(client3, rounds=1, min_clients=3).wait(30)
    before = {name: _proc(pid) for name, pid in pids.items()}
    py_threads = threading.active_count()

    for _ in range(SESSIONS):
        assert start(client3, rounds=1, min_clients=3).wait(30)

    after = {name: _proc(pid) for name, pid in pids.items()}
    growth = {name: {k: after[name][k] - before[name][k] for k in before[name]} for name in pids}
    print("growth over", SESSIONS, "sessions:", growth)
    for name, g in growth.items():
        assert g["fds"] <= 4, (name, g)
        assert g["threads"] <= 2, (name, g)
        assert g["rss_mb"] <= 40, (name, g)
    assert threading.active_count() <= py_threads + 1
