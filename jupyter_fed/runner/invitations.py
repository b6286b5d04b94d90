"""Making invitation blobs: a scoped, not-yet-active token sealed with the runner's address."""

from __future__ import annotations

from typing import Any

from jupyter_fed.runner.accounts import Accounts
from jupyter_fed.runner.schemas import NewInvitation
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.wire.invitation import seal
from jupyter_fed.wire.tls import fingerprint


def make_invitation(settings: RunnerSettings, accounts: Accounts, body: NewInvitation
                    ) -> dict[str, Any]:
    """Issue a one-time invitation for ``body.user``; the token activates when it is redeemed."""
    from jupyter_fed.runner.grants import Grants

    grants = Grants(accounts.store)
    for dataset in body.datasets:  # checked before anything is issued
        if accounts.store.get_dataset(dataset) is None:
            from jupyter_fed.runner.registry import no_such_dataset

            raise no_such_dataset(dataset, settings.name)
    inv_id, secret = accounts.create_invitation(body.user, body.scopes, body.expires_days)
    for dataset in body.datasets:
        grants.grant(body.user, dataset, granted_by="custodian", note=f"invitation {inv_id}")
    info = accounts.token_info(secret)
    cert = settings.home / "cert.pem"
    payload = {"v": 1, "runner": settings.name, "url": body.url or settings.public_url,
               "fingerprint": fingerprint(cert.read_text()) if cert.exists() else None,
               "token": secret, "invitation": inv_id, "user": body.user,
               "scopes": info["scopes"], "expires_at": info["expires_at"]}
    return {"invitation": inv_id, "blob": seal(payload, body.password), "user": body.user,
            "scopes": info["scopes"], "expires_at": info["expires_at"],
            "datasets": list(body.datasets)}
