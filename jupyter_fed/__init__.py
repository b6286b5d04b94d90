"""jupyter-fed: federated learning and federated analytics from a notebook.

Importing this package is cheap on purpose: torch, scikit-learn and matplotlib load only inside the
functions that need them.
"""

from __future__ import annotations

from typing import Any

from jupyter_fed._version import __version__
from jupyter_fed.errors import FedError

__all__ = ["FedError", "Scope", "SessionTaskGroup", "TaskBuilder", "__version__", "connect"]


def connect(*args: Any, **kwargs: Any) -> Any:
    """Connect to a coordinator; see :func:`jupyter_fed.client.connect`."""
    from jupyter_fed.client import connect as _connect

    return _connect(*args, **kwargs)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_fed``: register the ``%fed`` and ``%%federate`` magics."""
    from jupyter_fed.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext jupyter_fed``: remove the magics again."""
    from jupyter_fed.magics import unload_ipython_extension as _unload

    _unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt sidebar lives (for ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "jupyter-fed"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Where Jupyter finds the server extension (enabled on install by ``jupyter_fed.json``).

    The app is imported here, not at module level, so ``import jupyter_fed`` in a kernel never
    pays for jupyter_server.
    """
    from jupyter_fed.server.app import JupyterFedApp

    return [{"module": "jupyter_fed.server.app", "app": JupyterFedApp}]


def __getattr__(name: str) -> Any:
    if name in ("SessionTaskGroup", "TaskBuilder"):
        from jupyter_fed import client

        return getattr(client, name)
    if name == "Scope":
        from jupyter_fed.auth.scopes import Scope

        return Scope
    raise AttributeError(name)
