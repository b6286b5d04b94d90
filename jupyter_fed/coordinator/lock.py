"""One coordinator per state folder: an OS lock held for the process's lifetime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_fed.errors import ConflictError

__all__ = ["lock_state_dir"]


def lock_state_dir(folder: Path) -> Any:
    """Hold an exclusive lock on the state folder for this coordinator's lifetime.

    Two coordinators on one folder would both resume and drive the same sessions; the OS drops
    the lock when the process dies, even by SIGKILL, so a crash never leaves it stuck.
    """
    import fcntl
    import os

    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "coordinator.lock", "a+")  # noqa: SIM115 - held until aclose()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise ConflictError(f"the coordinator state folder {folder} is in use by {owner}",
                            "connect to that coordinator (e.g. the Jupyter server's), or pass "
                            "another state_dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle
