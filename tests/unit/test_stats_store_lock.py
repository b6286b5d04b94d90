"""The stats differencing store's check-then-remember is exclusive across worker processes.

Steps now run in several worker processes (issue 12); a lock that only held within one process
would let two steps on the same dataset both pass the differencing check and both be released.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from jupyter_fed.privacy.differencing import RowSets as QueryStore


def _hold(root: str, started: object, seconds: float) -> None:
    with QueryStore(Path(root)).locked("train"):
        started.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_the_dataset_lock_is_held_across_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    other = ctx.Process(target=_hold, args=(str(tmp_path), started, 1.0))
    other.start()
    assert started.wait(30)

    t0 = time.monotonic()
    with QueryStore(tmp_path).locked("train"):
        waited = time.monotonic() - t0
    other.join(30)

    assert waited > 0.5, f"entered after {waited:.2f} s while another process held the lock"
