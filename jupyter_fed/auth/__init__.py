"""Token administration in the reference SDK's vocabulary.

``from jupyter_fed.auth import connect_to_auth_client`` and ``from jupyter_fed.auth.scopes import
Scope`` mirror ``integrate_ai_sdk.auth``; the auth client is :class:`~jupyter_fed.client.auth.
RunnerAuth` for one connected runner (users and tokens live at runners, not at the coordinator).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from jupyter_fed.auth.scopes import Scope

if TYPE_CHECKING:
    from jupyter_fed.client.auth import RunnerAuth

__all__ = ["Scope", "connect_to_auth_client"]


def connect_to_auth_client(token: str | None = None, *, runner: str | None = None,
                           url: str | None = None) -> RunnerAuth:
    """User and token administration at a runner, through the configured coordinator.

    Parameters
    ----------
    token
        The coordinator's token, as for ``jupyter_fed.connect(token)``; ``None`` connects as
        ``jupyter_fed.connect()`` does.
    runner
        The connected runner whose users and tokens to manage. Default: ``$JUPYTER_FED_RUNNER``,
        else the only runner the coordinator is connected to.
    url
        The coordinator's URL (default: ``$JUPYTER_FED_URL`` when a token is given).

    The coordinator calls the runner with the token it holds for it, so that token must carry
    ``admin`` at the runner; the runner, not this function, decides what it may do.

    Raises
    ------
    ConfigError
        No runner given and not exactly one connected.
    """
    from jupyter_fed.client import connect
    from jupyter_fed.errors import ConfigError

    client = connect(url, token=token) if url is not None else \
        connect(token=token) if token is not None else connect()
    name = runner or os.environ.get("JUPYTER_FED_RUNNER")
    if not name:
        names = [r["name"] for r in client._backend.runners()]
        if len(names) != 1:
            raise ConfigError(f"connect_to_auth_client: {len(names)} runners are connected "
                              f"({', '.join(names) or 'none'}); which one's users and tokens?",
                              "pass runner=NAME, or set JUPYTER_FED_RUNNER")
        name = names[0]
    return client.auth(name)
