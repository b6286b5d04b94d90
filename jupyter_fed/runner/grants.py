"""Per-dataset grants and the data request queue: who may use which dataset, for what, how much.

A scope says what kind of call a token may make; a *grant* says which dataset it may make it on.
A model builder sees, and may run steps on, only the datasets granted to them, plus those whose
policy the custodian made ``public`` (to every token of the runner). A grant narrows the dataset's
policy for that principal — packages (or ``package.step``) it allows, an epsilon budget of its own,
an expiry — and never widens anything else in it.

A builder without a grant, or who needs more than theirs gives, files a *request*; the custodian
approves it (optionally with changes: the grant made is what the custodian approved, not what was
asked) or denies it. A request never tells the builder whether the dataset exists: it is accepted
for any well-formed name, and the custodian sees that the name is unknown.

Administrators and custodians (``register_dataset``) see every dataset: they manage them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jupyter_fed.errors import ConfigError, ConflictError, NotFoundError, PermissionDenied
from jupyter_fed.runner.accounts import Principal
from jupyter_fed.runner.policy import DatasetPolicy
from jupyter_fed.runner.store import RunnerStore, now
from jupyter_fed.wire.models import NAME_RE

MAX_PENDING_PER_PRINCIPAL = 20
"""Open requests one principal may have at a time: the queue is a custodian's inbox, not a sink."""
MAX_GRANT_DAYS = 3650

_SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, dataset TEXT NOT NULL, packages TEXT,
    epsilon_budget REAL, granted_by TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT,
    revoked_at TEXT, request_id TEXT, note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS grants_by_principal ON grants (principal, dataset);
CREATE TABLE IF NOT EXISTS access_requests (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, dataset TEXT NOT NULL, packages TEXT,
    epsilon REAL, reason TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    decided_by TEXT, decided_at TEXT, note TEXT NOT NULL DEFAULT '', grant_id TEXT);
"""


@dataclass(frozen=True)
class Grant:
    """One principal's access to one dataset."""

    id: str
    principal: str
    dataset: str
    packages: tuple[str, ...] | None
    """``package`` or ``package.step`` entries; ``None``: whatever the dataset's policy allows."""
    epsilon_budget: float | None
    """The principal's own total epsilon on the dataset; ``None``: the policy's."""
    expires_at: str | None

    def allows(self, package: str, step: str | None = None) -> bool:
        if self.packages is None:
            return True
        if package.startswith("custom:") and "custom" in self.packages:
            return True
        return package in self.packages or (step is not None and f"{package}.{step}" in
                                            self.packages)

    def as_dict(self) -> dict[str, Any]:
        return {"grant_id": self.id, "user": self.principal, "dataset": self.dataset,
                "packages": list(self.packages) if self.packages is not None else None,
                "epsilon_budget": self.epsilon_budget, "expires_at": self.expires_at}


def _check_packages(packages: list[str] | None) -> list[str] | None:
    if packages is None:
        return None
    from jupyter_fed.packages import package_names

    known = set(package_names())
    known.add("custom")  # any approved custom code (runner/custom_code.py) the policy allows
    unknown = sorted({p for p in packages if p.split(".", 1)[0] not in known})
    if unknown:
        raise ConfigError(f"unknown package(s) {', '.join(unknown)}",
                          f"packages are: {', '.join(sorted(known))} (or package.step)",
                          details=[{"field": "packages", "error": "unknown package"}])
    return sorted(set(packages))


def _check_name(dataset: str) -> None:
    if not NAME_RE.match(dataset):
        raise ConfigError(f"dataset name {dataset!r} is invalid", "use the catalog's name",
                          details=[{"field": "dataset", "error": "invalid"}])


def _check_epsilon(epsilon: float | None, field: str) -> None:
    if epsilon is not None and not 0 <= epsilon < float("inf"):
        raise ConfigError(f"{field} must be a finite number ≥ 0", "",
                          details=[{"field": field, "error": "out of range"}])


class Grants:
    """Grants and access requests in the runner's database."""

    def __init__(self, store: RunnerStore) -> None:
        self.store = store
        store.add_schema(_SCHEMA)

    # -- grants -------------------------------------------------------------------------------
    def grant(self, principal: str, dataset: str, *, packages: list[str] | None = None,
              epsilon_budget: float | None = None, expires_days: float | None = None,
              granted_by: str, note: str = "", request_id: str | None = None) -> dict[str, Any]:
        """Give ``principal`` access to ``dataset``; replaces (revokes) their previous grant."""
        _check_name(dataset)
        packages = _check_packages(packages)
        _check_epsilon(epsilon_budget, "epsilon_budget")
        if expires_days is not None and not 0 < expires_days <= MAX_GRANT_DAYS:
            raise ConfigError(f"expires_days must be in (0, {MAX_GRANT_DAYS}]", "",
                              details=[{"field": "expires_days", "error": "out of range"}])
        grant_id = "grt_" + secrets.token_hex(6)
        stamp = now()
        expires = (stamp + timedelta(days=expires_days)).isoformat() if expires_days else None
        with self.store.tx() as db:
            if not db.execute("SELECT 1 FROM users WHERE name=?", (principal,)).fetchone():
                raise NotFoundError(f"no user {principal!r}", "create the user first")
            if not db.execute("SELECT 1 FROM datasets WHERE name=?", (dataset,)).fetchone():
                raise NotFoundError(f"no dataset named {dataset!r}",
                                    "see `jupyter-fed runner datasets`")
            db.execute("UPDATE grants SET revoked_at=? WHERE principal=? AND dataset=? AND "
                       "revoked_at IS NULL", (stamp.isoformat(), principal, dataset))
            db.execute("INSERT INTO grants VALUES (?,?,?,?,?,?,?,?,NULL,?,?)",
                       (grant_id, principal, dataset,
                        json.dumps(packages) if packages is not None else None, epsilon_budget,
                        granted_by, stamp.isoformat(), expires, request_id, note))
        return self._row_dict(self._get(grant_id))

    def revoke(self, grant_id: str) -> None:
        with self.store.tx() as db:
            if not db.execute("UPDATE grants SET revoked_at=? WHERE id=? AND revoked_at IS NULL",
                              (now().isoformat(), grant_id)).rowcount:
                raise NotFoundError(f"no active grant {grant_id!r}", "list them with grants()")

    def revoke_all(self, *, principal: str | None = None, dataset: str | None = None) -> int:
        """Revoke every active grant of a user or on a dataset — when either is removed, so a
        later user or dataset of the same name inherits nothing; how many there were."""
        if principal is None and dataset is None:
            raise ValueError("name a principal or a dataset")
        with self.store.tx() as db:
            return db.execute("UPDATE grants SET revoked_at=? WHERE (?2 IS NULL OR principal=?2) "
                              "AND (?3 IS NULL OR dataset=?3) AND revoked_at IS NULL",
                              (now().isoformat(), principal, dataset)).rowcount

    def grants(self, principal: str | None = None, dataset: str | None = None, *,
               include_inactive: bool = False) -> list[dict[str, Any]]:
        with self.store.tx() as db:
            rows = db.execute("SELECT * FROM grants WHERE (?1 IS NULL OR principal=?1) AND "
                              "(?2 IS NULL OR dataset=?2) ORDER BY created_at",
                              (principal, dataset)).fetchall()
        out = [self._row_dict(dict(r)) for r in rows]
        return out if include_inactive else [g for g in out if g["active"]]

    def _get(self, grant_id: str) -> dict[str, Any]:
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM grants WHERE id=?", (grant_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no grant {grant_id!r}", "")
        return dict(row)

    @staticmethod
    def _row_dict(row: dict[str, Any]) -> dict[str, Any]:
        expired = row["expires_at"] is not None and datetime.fromisoformat(row["expires_at"]) <= now()
        return {"grant_id": row["id"], "user": row["principal"], "dataset": row["dataset"],
                "packages": json.loads(row["packages"]) if row["packages"] else None,
                "epsilon_budget": row["epsilon_budget"], "granted_by": row["granted_by"],
                "created_at": row["created_at"], "expires_at": row["expires_at"],
                "revoked_at": row["revoked_at"], "request_id": row["request_id"],
                "note": row["note"], "active": not row["revoked_at"] and not expired}

    def active(self, principal: str, dataset: str) -> Grant | None:
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM grants WHERE principal=? AND dataset=? AND "
                             "revoked_at IS NULL ORDER BY created_at DESC LIMIT 1",
                             (principal, dataset)).fetchone()
        if row is None:
            return None
        if row["expires_at"] is not None and datetime.fromisoformat(row["expires_at"]) <= now():
            return None
        return Grant(row["id"], row["principal"], row["dataset"],
                     tuple(json.loads(row["packages"])) if row["packages"] else None,
                     row["epsilon_budget"], row["expires_at"])

    # -- who sees what ------------------------------------------------------------------------
    def visible(self, principal: Principal, dataset: str, policy: DatasetPolicy) -> bool:
        """Whether ``principal`` may see ``dataset`` in the catalog (and name it in a task)."""
        return sees_everything(principal) or policy.public or \
            self.active(principal.name, dataset) is not None

    def effective_policy(self, principal: Principal, dataset: str, policy: DatasetPolicy
                         ) -> tuple[DatasetPolicy, Grant | None] | None:
        """The policy a step of ``principal`` runs under on ``dataset`` — the grant's epsilon
        budget and packages in it — with its grant, or ``None`` when the dataset is not theirs
        to use (answered as if it did not exist)."""
        if principal.is_admin:
            return policy, None
        grant = self.active(principal.name, dataset)
        if grant is None:
            return (policy, None) if policy.public else None
        changes: dict[str, Any] = {}
        if grant.epsilon_budget is not None:
            changes["epsilon_budget"] = grant.epsilon_budget
        if grant.packages is not None:  # the grant's packages, within what the policy allows
            granted = {p.split(".", 1)[0] for p in grant.packages}
            changes["allowed_packages"] = sorted(
                granted if policy.allowed_packages is None else
                granted & set(policy.allowed_packages))
        return policy.model_copy(update=changes), grant

    def check_step(self, principal: Principal, dataset: str, runner: str, policy: DatasetPolicy,
                   package: str, step: str | None) -> DatasetPolicy:
        """The effective policy for one step, or ``NotFoundError`` / ``PermissionDenied``.

        ``step`` ``None``: a built-in step of secure aggregation, which reads no row; only the
        dataset's visibility is checked."""
        from jupyter_fed.runner.registry import no_such_dataset

        found = self.effective_policy(principal, dataset, policy)
        if found is None:
            raise no_such_dataset(dataset, runner)
        effective, grant = found
        if grant is not None and step is not None and not grant.allows(package, step):
            raise PermissionDenied(
                f"your grant on dataset {dataset!r} does not allow {package}.{step}",
                f"ask for it with client.request_access(runner, {dataset!r}, "
                f"packages=[{package!r}])")
        return effective

    # -- requests -----------------------------------------------------------------------------
    def file_request(self, principal: str, dataset: str, *, packages: list[str] | None,
                     epsilon: float | None, reason: str) -> dict[str, Any]:
        _check_name(dataset)
        packages = _check_packages(packages)
        _check_epsilon(epsilon, "epsilon")
        if len(reason) > 4000:
            raise ConfigError("reason is longer than 4000 characters", "say it shorter",
                              details=[{"field": "reason", "error": "too long"}])
        request_id = "req_" + secrets.token_hex(6)
        with self.store.tx() as db:
            pending = db.execute("SELECT COUNT(*) FROM access_requests WHERE principal=? AND "
                                 "status='pending'", (principal,)).fetchone()[0]
            if pending >= MAX_PENDING_PER_PRINCIPAL:
                raise ConflictError(f"you have {pending} requests waiting on this runner",
                                    "withdraw some, or wait for the custodian's decisions")
            db.execute("INSERT INTO access_requests VALUES (?,?,?,?,?,?,'pending',?,NULL,NULL,'',"
                       "NULL)", (request_id, principal, dataset,
                                 json.dumps(packages) if packages is not None else None, epsilon,
                                 reason, now().isoformat()))
        return self.request(request_id)

    def request(self, request_id: str, principal: str | None = None) -> dict[str, Any]:
        """One request; with ``principal``, only if it is theirs (else as if it did not exist)."""
        with self.store.tx() as db:
            row = db.execute("SELECT r.*, d.name IS NOT NULL AS known FROM access_requests r "
                             "LEFT JOIN datasets d ON d.name = r.dataset WHERE r.id=?",
                             (request_id,)).fetchone()
        if row is None or (principal is not None and row["principal"] != principal):
            raise NotFoundError(f"no request {request_id!r}", "list yours with my_requests()")
        return self._request_dict(dict(row), custodian=principal is None)

    def requests(self, *, status: str | None = None, principal: str | None = None,
                 custodian: bool = True) -> list[dict[str, Any]]:
        with self.store.tx() as db:
            rows = db.execute("SELECT r.*, d.name IS NOT NULL AS known FROM access_requests r "
                              "LEFT JOIN datasets d ON d.name = r.dataset WHERE (?1 IS NULL OR "
                              "r.status=?1) AND (?2 IS NULL OR r.principal=?2) "
                              "ORDER BY r.created_at", (status, principal)).fetchall()
        return [self._request_dict(dict(r), custodian=custodian) for r in rows]

    @staticmethod
    def _request_dict(row: dict[str, Any], *, custodian: bool) -> dict[str, Any]:
        out = {"request_id": row["id"], "user": row["principal"], "dataset": row["dataset"],
               "packages": json.loads(row["packages"]) if row["packages"] else None,
               "epsilon": row["epsilon"], "reason": row["reason"], "status": row["status"],
               "created_at": row["created_at"], "decided_by": row["decided_by"],
               "decided_at": row["decided_at"], "note": row["note"], "grant_id": row["grant_id"]}
        if custodian:  # only the custodian learns whether the name is a dataset
            out["dataset_exists"] = bool(row["known"])
        return out

    def approve(self, request_id: str, decided_by: str, *, packages: Any = ...,
                epsilon: Any = ..., expires_days: float | None = None, note: str = ""
                ) -> dict[str, Any]:
        """Grant what was asked, or what the custodian changed it to (``packages``, ``epsilon``
        given here replace the request's)."""
        req = self._pending(request_id)
        grant = self.grant(req["user"], req["dataset"],
                           packages=req["packages"] if packages is ... else packages,
                           epsilon_budget=req["epsilon"] if epsilon is ... else epsilon,
                           expires_days=expires_days, granted_by=decided_by, note=note,
                           request_id=request_id)
        self._decide(request_id, "approved", decided_by, note, grant["grant_id"])
        return self.request(request_id)

    def deny(self, request_id: str, decided_by: str, note: str = "") -> dict[str, Any]:
        self._pending(request_id)
        self._decide(request_id, "denied", decided_by, note, None)
        return self.request(request_id)

    def withdraw(self, request_id: str, principal: str) -> dict[str, Any]:
        req = self.request(request_id, principal)
        if req["status"] != "pending":
            raise ConflictError(f"request {request_id} is already {req['status']}", "")
        self._decide(request_id, "withdrawn", principal, "", None)
        return self.request(request_id, principal)

    def _pending(self, request_id: str) -> dict[str, Any]:
        req = self.request(request_id)
        if req["status"] != "pending":
            raise ConflictError(f"request {request_id} is already {req['status']}",
                                "file a new request for a new decision")
        return req

    def _decide(self, request_id: str, status: str, decided_by: str, note: str,
                grant_id: str | None) -> None:
        with self.store.tx() as db:
            if not db.execute("UPDATE access_requests SET status=?, decided_by=?, decided_at=?, "
                              "note=?, grant_id=? WHERE id=? AND status='pending'",
                              (status, decided_by, now().isoformat(), note, grant_id,
                               request_id)).rowcount:
                raise ConflictError(f"request {request_id} was decided meanwhile", "")


def sees_everything(principal: Principal) -> bool:
    """Administrators and custodians manage every dataset, so every dataset is in their catalog."""
    return principal.is_admin or "register_dataset" in principal.scopes


__all__ = ["MAX_PENDING_PER_PRINCIPAL", "Grant", "Grants", "sees_everything"]
