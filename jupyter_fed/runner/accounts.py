"""Users, roles, scoped bearer tokens and one-time invitations.

Tokens are random, stored only as a SHA-256 hash (they carry 256 bits of entropy, so a slow hash
adds nothing), compared in constant time, scoped, expiring, and revocable. A token issued inside an
invitation is inactive until the invitation is redeemed, so a blob that leaks after its first use
is worthless.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jupyter_fed.errors import AuthError, ConfigError, ConflictError, NotFoundError, PermissionDenied
from jupyter_fed.runner.store import RunnerStore, now
from jupyter_fed.wire.models import NAME_RE

ALL_SCOPES = ("admin", "register_dataset", "read_catalog", "create_session", "read_session",
              "read_model", "run_custom_code", "read_user_session")
ROLES: dict[str, tuple[str, ...]] = {
    "administrator": ALL_SCOPES,
    "data_custodian": ("register_dataset", "read_catalog", "read_session"),
    "model_builder": ("read_catalog", "create_session", "read_user_session", "read_model",
                      "run_custom_code"),
}
IMPLIES: dict[str, frozenset[str]] = {"read_session": frozenset({"read_user_session"})}
"""Scopes that include others: reading every principal's tasks includes reading one's own."""
MAX_TOKEN_DAYS = 30
TOKEN_PREFIX = "jfr_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, hash TEXT UNIQUE NOT NULL, principal TEXT NOT NULL, scopes TEXT NOT NULL,
    created_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT, active INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS invitations (
    id TEXT PRIMARY KEY, token_id TEXT NOT NULL, principal TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, redeemed_at TEXT);
"""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling, as established by their token."""

    name: str
    token_id: str
    scopes: frozenset[str]
    active: bool = True

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def require(self, scope: str) -> None:
        if not self.is_admin and scope not in self.scopes and \
                not any(scope in IMPLIES.get(held, ()) for held in self.scopes):
            raise PermissionDenied(f"this token lacks the {scope!r} scope",
                                   "ask the runner's custodian for a token with that scope")


class Accounts:
    """Users, tokens and invitations in the runner's database."""

    def __init__(self, store: RunnerStore) -> None:
        self.store = store
        store.add_schema(_SCHEMA)

    # users -----------------------------------------------------------------------------------
    def create_user(self, name: str, role: str) -> dict[str, Any]:
        if not NAME_RE.match(name):
            raise ConfigError(f"user name {name!r} is invalid", "start with a letter; use letters, "
                              "digits, '-' and '_'", details=[{"field": "name", "error": "invalid"}])
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}", f"choose one of {', '.join(ROLES)}",
                              details=[{"field": "role", "error": "unknown role"}])
        with self.store.tx() as db:
            if db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise ConflictError(f"user {name!r} already exists", "")
            db.execute("INSERT INTO users VALUES (?,?,?)", (name, role, now().isoformat()))
        return {"name": name, "role": role, "scopes": list(ROLES[role])}

    def delete_user(self, name: str) -> None:
        """Remove a user and revoke every token they hold."""
        with self.store.tx() as db:
            if not db.execute("DELETE FROM users WHERE name=?", (name,)).rowcount:
                raise NotFoundError(f"no user {name!r}", "")
            db.execute("UPDATE tokens SET revoked_at=? WHERE principal=? AND revoked_at IS NULL",
                       (now().isoformat(), name))

    def users(self) -> list[dict[str, Any]]:
        with self.store.tx() as db:
            return [dict(r) for r in db.execute("SELECT * FROM users ORDER BY name")]

    def _role(self, name: str) -> str:
        with self.store.tx() as db:
            row = db.execute("SELECT role FROM users WHERE name=?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no user {name!r}", "create it first with create_user")
        return row["role"]

    # tokens ----------------------------------------------------------------------------------
    def create_token(self, user: str, scopes: list[str] | None = None, expires_days: float = 30,
                     *, description: str = "", active: bool = True,
                     unlimited: bool = False) -> tuple[str, str]:
        """Issue a token for ``user``; returns ``(token_id, secret)``, the secret shown once.

        Scopes default to the user's role and may not exceed it; scoped tokens live at most
        30 days (``unlimited`` is for the admin token made at ``runner init``).
        """
        role = self._role(user)
        scopes = list(scopes) if scopes is not None else list(ROLES[role])
        unknown = sorted(set(scopes) - set(ALL_SCOPES))
        if unknown:
            raise ConfigError(f"unknown scope(s) {', '.join(unknown)}",
                              f"scopes are: {', '.join(ALL_SCOPES)}",
                              details=[{"field": "scopes", "error": "unknown scope"}])
        beyond = sorted(set(scopes) - set(ROLES[role]))
        if beyond:
            raise PermissionDenied(f"role {role!r} of {user!r} does not allow {', '.join(beyond)}",
                                   "give the user another role, or fewer scopes")
        if not 0 < expires_days <= MAX_TOKEN_DAYS and not unlimited:
            raise ConfigError(f"tokens live at most {MAX_TOKEN_DAYS} days",
                              "ask for a shorter expiry, and renew",
                              details=[{"field": "expires", "error": "out of range"}])
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(6)
        with self.store.tx() as db:
            db.execute("INSERT INTO tokens VALUES (?,?,?,?,?,?,NULL,?,?)",
                       (token_id, _digest(secret), user, json.dumps(scopes), now().isoformat(),
                        (now() + timedelta(days=expires_days)).isoformat(), int(active),
                        description))
        return token_id, secret

    def revoke_token(self, token_id: str) -> None:
        with self.store.tx() as db:
            if not db.execute("UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL",
                              (now().isoformat(), token_id)).rowcount:
                raise NotFoundError(f"no active token {token_id!r}", "")

    def _row(self, secret: str) -> dict[str, Any] | None:
        digest = _digest(secret)
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM tokens WHERE hash=?", (digest,)).fetchone()
        # Compare the hashes again in constant time: timing stays flat whatever the index does.
        if row is None or not hmac.compare_digest(row["hash"], digest):
            return None
        return dict(row)

    @staticmethod
    def _info(row: dict[str, Any]) -> dict[str, Any]:
        expired = datetime.fromisoformat(row["expires_at"]) <= now()
        return {"token_id": row["id"], "user": row["principal"], "scopes": json.loads(row["scopes"]),
                "issued_at": row["created_at"], "expires_at": row["expires_at"],
                "revoked_at": row["revoked_at"], "description": row["description"],
                "active": bool(row["active"]) and not row["revoked_at"] and not expired}

    def token_info(self, secret: str) -> dict[str, Any]:
        row = self._row(secret)
        if row is None:
            raise NotFoundError("unknown token", "")
        return self._info(row)

    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        with self.store.tx() as db:
            rows = db.execute("SELECT * FROM tokens WHERE ?1 IS NULL OR principal=?1 "
                              "ORDER BY created_at", (user,)).fetchall()
        return [self._info(dict(r)) for r in rows]

    def authenticate(self, header: str | None, *, allow_pending: bool = False) -> Principal:
        """Resolve an ``Authorization: Bearer`` header to a principal, or raise ``AuthError``."""
        if not header or not header.lower().startswith("bearer "):
            raise AuthError("missing bearer token", "send 'Authorization: Bearer <token>'")
        row = self._row(header[7:].strip())
        if row is None:
            raise AuthError("unknown token", "check the token, or ask the custodian for a new one")
        if row["revoked_at"]:
            raise AuthError("token revoked", "ask the custodian for a new token")
        if datetime.fromisoformat(row["expires_at"]) <= now():
            raise AuthError("token expired", "ask the custodian for a new token")
        if not row["active"] and not allow_pending:
            raise AuthError("token not yet active: its invitation was never redeemed",
                            "join with the invitation first")
        return Principal(row["principal"], row["id"], frozenset(json.loads(row["scopes"])),
                         bool(row["active"]))

    # invitations -----------------------------------------------------------------------------
    def create_invitation(self, user: str, scopes: list[str] | None, expires_days: float
                          ) -> tuple[str, str]:
        """An invitation id and its (inactive) token secret; redeeming activates the token."""
        token_id, secret = self.create_token(user, scopes, expires_days, active=False,
                                             description="invitation")
        inv_id = "inv_" + secrets.token_hex(8)
        with self.store.tx() as db:
            db.execute("INSERT INTO invitations VALUES (?,?,?,?,?,NULL)",
                       (inv_id, token_id, user, now().isoformat(),
                        (now() + timedelta(days=expires_days)).isoformat()))
        return inv_id, secret

    def redeem(self, inv_id: str, principal: Principal) -> dict[str, Any]:
        """Activate the invitation's token, once."""
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM invitations WHERE id=?", (inv_id,)).fetchone()
            if row is None or row["token_id"] != principal.token_id:
                raise NotFoundError("no such invitation for this token", "")
            if row["redeemed_at"]:
                raise ConflictError("this invitation was already used",
                                    "ask the custodian for a new invitation")
            if datetime.fromisoformat(row["expires_at"]) <= now():
                raise AuthError("this invitation has expired", "ask the custodian for a new one")
            db.execute("UPDATE invitations SET redeemed_at=? WHERE id=?", (now().isoformat(), inv_id))
            db.execute("UPDATE tokens SET active=1 WHERE id=?", (row["token_id"],))
        return {"invitation": inv_id, "user": row["principal"], "token_id": row["token_id"]}
