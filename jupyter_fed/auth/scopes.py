"""The scopes a runner token may carry, as the reference SDK names them (``Scope.create_session``).

Each member's value is the scope's name on the wire, so ``create_token(scopes=[Scope.x])`` and
``create_token(scopes=["x"])`` are the same request. The runner decides what each scope allows
(README, "Runner routes and scopes"); ``tests/unit`` checks this list against the runner's.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Scope"]


class Scope(StrEnum):
    """Scopes of a runner token.

    ``read_user_session`` reads the tasks (sessions) the token's own user ran; ``read_session``
    includes it and lists every user's tasks on the runner (a custodian's scope). ``admin``
    implies every scope.
    """

    admin = "admin"
    register_dataset = "register_dataset"
    read_catalog = "read_catalog"
    create_session = "create_session"
    read_session = "read_session"
    read_user_session = "read_user_session"
    read_model = "read_model"
    run_custom_code = "run_custom_code"
