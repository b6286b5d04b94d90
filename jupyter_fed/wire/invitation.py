"""Invitations: a runner's URL, certificate fingerprint and a scoped token, sealed by a password.

The blob is safe to send over an untrusted channel as long as the password travels another way:
the key is derived with scrypt and the content sealed with AES-GCM, so a wrong password or a
tampered blob fails as a whole instead of yielding garbage.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from jupyter_fed.errors import AuthError, ConfigError

PREFIX = "jfinv1."
_AAD = b"jupyter-fed invitation v1"


def _key(password: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(password.encode())


def seal(payload: dict[str, Any], password: str) -> str:
    """Encrypt ``payload`` (JSON-able) under ``password``; returns a copy-pasteable string."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(password) < 8:
        raise ConfigError("invitation passwords need at least 8 characters",
                          "choose a longer password", details=[{"field": "password",
                                                                "error": "too short"}])
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = AESGCM(_key(password, salt)).encrypt(nonce, json.dumps(payload).encode(), _AAD)
    return PREFIX + base64.urlsafe_b64encode(salt + nonce + sealed).decode().rstrip("=")


def open_blob(blob: str, password: str) -> dict[str, Any]:
    """Decrypt an invitation; a wrong password raises ``AuthError``, a damaged blob ``ConfigError``."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    blob = blob.strip()
    if not blob.startswith(PREFIX):
        raise ConfigError("this is not a jupyter-fed invitation", "paste the whole blob, "
                          f"starting with {PREFIX!r}")
    try:
        raw = base64.urlsafe_b64decode(blob[len(PREFIX):] + "=" * (-len(blob) % 4))
    except ValueError:
        raise ConfigError("the invitation is damaged", "paste the whole blob again") from None
    if len(raw) < 16 + 12 + 16:
        raise ConfigError("the invitation is damaged", "paste the whole blob again")
    salt, nonce, sealed = raw[:16], raw[16:28], raw[28:]
    try:
        return json.loads(AESGCM(_key(password, salt)).decrypt(nonce, sealed, _AAD))
    except InvalidTag:
        raise AuthError("wrong password for this invitation (or the blob was altered)",
                        "check the password with the custodian who sent it") from None
