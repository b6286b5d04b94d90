"""Token requests and answers in both vocabularies: ours (``user``, ``scopes``) and the reference
SDK's (``user_id=``, ``Scope`` members, ``token_info()["scope"]``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jupyter_fed.errors import ConfigError

__all__ = ["one_user", "scope_names", "with_reference_keys"]


def one_user(user: str | None, user_id: str | None) -> str:
    """The user a token is for, given as ``user`` or as the reference's ``user_id``."""
    if user is not None and user_id is not None and user != user_id:
        raise ConfigError(f"user={user!r} and user_id={user_id!r} disagree",
                          "give one of them", details=[{"field": "user_id", "error": "conflict"}])
    name = user if user is not None else user_id
    if not name:
        raise ConfigError("create_token needs the user the token is for",
                          "pass user_id= (or user=)", details=[{"field": "user_id",
                                                                "error": "required"}])
    return name


def scope_names(scopes: Iterable[Any] | None) -> list[str] | None:
    """Scope names from names or ``Scope`` members; a lone string is one scope, not letters."""
    if scopes is None:
        return None
    if isinstance(scopes, str):
        scopes = [scopes]
    return [str(getattr(s, "value", s)) for s in scopes]


def with_reference_keys(info: Any) -> Any:
    """A token's info with the reference SDK's ``user_id`` and ``scope`` keys added."""
    if isinstance(info, dict) and "user" in info and "scopes" in info:
        info = {**info, "user_id": info["user"], "scope": " ".join(info["scopes"])}
    return info
