"""The client the magics use: one per kernel, made on first use, replaceable with ``%fed use``."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from jupyter_fed.magics._errors import FedUsageError, fed_errors

if TYPE_CHECKING:
    from jupyter_fed.client import Client, Session

__all__ = ["get_client", "last_session", "remember_session", "reset_client", "set_client"]

_lock = threading.Lock()
_client: Client | None = None
_last_session: Session | None = None


def get_client() -> Client:
    """The current client; the first call connects with ``jupyter_fed.connect()``'s defaults."""
    global _client
    with _lock:
        if _client is None:
            import jupyter_fed

            with fed_errors("connecting to the coordinator"):
                _client = jupyter_fed.connect()
        return _client


def set_client(client: Any) -> None:
    """Make ``client`` the one every magic uses (checked by duck typing, so subclasses work)."""
    global _client
    missing = [m for m in ("datasets", "runners", "create_fl_session", "session") if
               not callable(getattr(client, m, None))]
    if missing:
        raise FedUsageError(f"{type(client).__name__} is not a jupyter_fed Client (it has no "
                            f"{', '.join(missing)})", "pass the result of jupyter_fed.connect()")
    with _lock:
        _client = client


def reset_client() -> None:
    """Forget the current client (the next magic connects again); does not close it."""
    global _client
    with _lock:
        _client = None


def remember_session(session: Session) -> None:
    """Note the session ``%%federate`` created last, for ``%fed status`` without an ID."""
    global _last_session
    _last_session = session


def last_session() -> Session | None:
    """The session ``%%federate`` created last in this kernel, if any."""
    return _last_session
