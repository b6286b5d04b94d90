"""Bearer tokens: random, stored only as a hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from jupyter_fed.errors import AuthError, PermissionDenied
from jupyter_fed.runner.store import RunnerStore, now

ALL_SCOPES = ("admin", "register_dataset", "read_catalog", "create_session", "read_session",
              "read_model", "run_custom_code")
TOKEN_PREFIX = "jfr_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling, as established by their token."""

    name: str
    token_id: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if "admin" not in self.scopes and scope not in self.scopes:
            raise PermissionDenied(f"this token lacks the {scope!r} scope",
                                   "ask the runner's custodian for a token with that scope")


def issue_token(store: RunnerStore, principal: str, scopes: list[str] | tuple[str, ...],
                expires_at: datetime | None = None) -> tuple[str, str]:
    """Create a token; returns ``(token_id, secret)``. The secret is shown once and never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = "tok_" + secrets.token_hex(6)
    store.put_token(token_id, _digest(secret), principal, list(scopes), expires_at)
    return token_id, secret


def authenticate(store: RunnerStore, header: str | None) -> Principal:
    """Resolve an ``Authorization: Bearer`` header to a principal, or raise ``AuthError``."""
    if not header or not header.lower().startswith("bearer "):
        raise AuthError("missing bearer token", "send 'Authorization: Bearer <token>'")
    secret = header[7:].strip()
    digest = _digest(secret)
    row = store.token_by_hash(digest)
    # The lookup is by hash; comparing the hashes again in constant time keeps timing flat even
    # if the index lookup ever short-circuits on a prefix.
    if row is None or not hmac.compare_digest(row["hash"], digest):
        raise AuthError("unknown token", "check the token, or ask the custodian for a new one")
    if row["revoked_at"]:
        raise AuthError("token revoked", "ask the custodian for a new token")
    if row["expires_at"] and datetime.fromisoformat(row["expires_at"]) <= now():
        raise AuthError("token expired", "ask the custodian for a new token")
    return Principal(row["principal"], row["id"], frozenset(row["scopes"]))
