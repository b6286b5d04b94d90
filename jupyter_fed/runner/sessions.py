"""Listing the tasks that ran on this runner: one's own (``read_user_session``), or everyone's
(``read_session``).

The two scopes follow the reference SDK: ``read_user_session`` reads the sessions a user created,
``read_session`` every session. At a runner a session is the tasks a coordinator submitted for
it, so a builder's token needs only ``read_user_session`` (its own tasks' status, which the
coordinator polls); a custodian's ``read_session`` lists what every principal ran on the silo.
A listing carries metadata only — who, which package and step, which datasets, state and times —
never a task's outputs, which stay with the principal who asked for them (``GET /v1/tasks/{id}``).

Everyone's tasks need ``read_session`` held by the token *and* still granted by its user's role,
so a builder token issued with ``read_session`` before builders lost it cannot list other
principals' work.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_fed.errors import PermissionDenied
from jupyter_fed.runner.accounts import ROLES, Accounts, Principal
from jupyter_fed.runner.store import RunnerStore

__all__ = ["list_tasks"]


def _may_read_everyone(accounts: Accounts, principal: Principal) -> bool:
    if principal.is_admin:
        return True
    if "read_session" not in principal.scopes:
        return False
    role = next((u["role"] for u in accounts.users() if u["name"] == principal.name), None)
    return role is not None and "read_session" in ROLES.get(role, ())


def list_tasks(store: RunnerStore, accounts: Accounts, principal: Principal, *,
               everyone: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` tasks of ``principal`` (or, with ``everyone``, of all principals).

    Raises
    ------
    PermissionDenied
        ``everyone`` without ``read_session`` (in the token and the user's role).
    """
    if everyone and not _may_read_everyone(accounts, principal):
        raise PermissionDenied("listing every principal's tasks needs the 'read_session' scope",
                               "leave out all=true to list your own tasks (read_user_session)")
    with store.tx() as db:
        rows = db.execute("SELECT principal, spec, status FROM tasks WHERE ?1 OR principal=?2 "
                          "ORDER BY updated_at DESC LIMIT ?3",
                          (int(everyone), principal.name, limit)).fetchall()
    out = []
    for row in rows:
        spec, status = json.loads(row["spec"]), json.loads(row["status"])
        out.append({"task_id": spec.get("task_id"), "principal": row["principal"],
                    "session_id": spec.get("session_id"), "round": spec.get("round"),
                    "package": spec.get("package"), "step": spec.get("step"),
                    "datasets": spec.get("datasets", {}), "state": status.get("state"),
                    "submitted_at": status.get("submitted_at"),
                    "finished_at": status.get("finished_at")})
    return out
