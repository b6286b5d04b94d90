"""jupyter-fed: federated learning and federated analytics from a notebook.

Importing this package is cheap on purpose: torch, scikit-learn and matplotlib load only inside the
functions that need them.
"""

from __future__ import annotations

from typing import Any

from jupyter_fed._version import __version__
from jupyter_fed.errors import FedError

__all__ = ["FedError", "SessionTaskGroup", "TaskBuilder", "__version__", "connect"]


def connect(*args: Any, **kwargs: Any) -> Any:
    """Connect to a coordinator; see :func:`jupyter_fed.client.connect`."""
    from jupyter_fed.client import connect as _connect

    return _connect(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ("SessionTaskGroup", "TaskBuilder"):
        from jupyter_fed import client

        return getattr(client, name)
    raise AttributeError(name)
