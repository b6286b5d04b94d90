"""Runner administration from the SDK, for someone whose connection holds an admin token.

Every call is forwarded by the coordinator with the stored token; the runner decides what the
token may do, so this class adds convenience, not power.
"""

from __future__ import annotations

from typing import Any


class RunnerAuth:
    """Users, tokens, invitations, policies, budget and audit of one runner.

    Field names follow the reference SDK (``create_user``, ``create_token``, ``revoke_token``,
    ``token_info``).
    """

    def __init__(self, backend: Any, runner: str) -> None:
        self._backend, self.runner = backend, runner

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        return self._backend.runner_admin(self.runner, method, path, body, params or None)

    def create_user(self, name: str, role: str = "model_builder") -> dict[str, Any]:
        """Roles: ``administrator``, ``data_custodian``, ``model_builder``."""
        return self._call("POST", "/v1/users", {"name": name, "role": role})

    def delete_user(self, name: str) -> None:
        """Remove a user and revoke all their tokens."""
        self._call("DELETE", f"/v1/users/{name}")

    def users(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/users")

    def create_token(self, user: str | None = None, scopes: list[Any] | None = None,
                     expires_days: float = 30, description: str = "", *,
                     user_id: str | None = None) -> dict[str, Any]:
        """A new scoped token (at most 30 days); the secret is in ``["token"]``, shown only now.

        ``user_id`` is the reference SDK's name for ``user``; ``scopes`` are names or
        :class:`~jupyter_fed.auth.scopes.Scope` members (default: the user's role).
        """
        from jupyter_fed.client.tokens import one_user, scope_names, with_reference_keys

        return with_reference_keys(self._call(
            "POST", "/v1/tokens", {"user": one_user(user, user_id), "scopes": scope_names(scopes),
                                   "expires_days": expires_days, "description": description}))

    def revoke_token(self, token_id: str) -> None:
        self._call("DELETE", f"/v1/tokens/{token_id}")

    def token_info(self, token: str) -> dict[str, Any]:
        """User, scopes, issued/expiry times and whether the token is active (also under the
        reference SDK's keys ``user_id`` and ``scope``, a space-separated string)."""
        from jupyter_fed.client.tokens import with_reference_keys

        return with_reference_keys(self._call("POST", "/v1/tokens/info", {"token": token}))

    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/tokens", user=user)

    def invite(self, user: str, password: str, scopes: list[str] | None = None,
               expires_days: float = 7, url: str | None = None,
               datasets: list[str] | None = None) -> dict[str, Any]:
        """A one-time invitation blob for ``user``, granting them ``datasets``; send the
        password another way."""
        return self._call("POST", "/v1/invitations", {"user": user, "password": password,
                                                      "scopes": scopes,
                                                      "expires_days": expires_days, "url": url,
                                                      "datasets": datasets or []})

    def policy(self, dataset: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/datasets/{dataset}/policy")

    def set_policy(self, dataset: str, **policy: Any) -> dict[str, Any]:
        """Replace a dataset's policy: ``allowed_packages``, ``min_rows``, ``min_count``,
        ``epsilon_budget``."""
        return self._call("PUT", f"/v1/datasets/{dataset}/policy", policy)

    def budget(self, principal: str | None = None) -> list[dict[str, Any]]:
        """Epsilon spent per principal and dataset."""
        return self._call("GET", "/v1/budget", principal=principal)

    def audit(self, principal: str | None = None, dataset: str | None = None,
              outcome: str | None = None, since: str | None = None, limit: int = 200
              ) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/audit", principal=principal, dataset=dataset, outcome=outcome,
                          since=since, limit=limit)

    # -- grants and requests (a custodian's token: ``register_dataset``) ----------------------
    def grant(self, user: str, dataset: str, packages: list[str] | None = None,
              epsilon: float | None = None, expires_days: float | None = None,
              note: str = "") -> dict[str, Any]:
        """Let ``user`` see and use ``dataset``: only ``packages`` (or ``package.step``), with
        an epsilon budget of their own, until ``expires_days`` — each optional."""
        return self._call("POST", "/v1/grants", {"user": user, "dataset": dataset,
                                                 "packages": packages, "epsilon_budget": epsilon,
                                                 "expires_days": expires_days, "note": note})

    def revoke_grant(self, grant_id: str) -> None:
        self._call("DELETE", f"/v1/grants/{grant_id}")

    def grants(self, user: str | None = None, dataset: str | None = None,
               include_inactive: bool = False) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/grants", user=user, dataset=dataset,
                          include_inactive=include_inactive or None)

    def requests(self, status: str | None = "pending", user: str | None = None
                 ) -> list[dict[str, Any]]:
        """Access requests (default: those waiting for a decision; ``status=None``: all)."""
        return self._call("GET", "/v1/requests", status=status, user=user)

    def approve(self, request_id: str, packages: list[str] | None = None,
                epsilon: float | None = None, expires_days: float | None = None,
                note: str = "") -> dict[str, Any]:
        """Approve a request; ``packages`` / ``epsilon`` given here replace what was asked."""
        body: dict[str, Any] = {"note": note}
        if packages is not None:
            body["packages"] = packages
        if epsilon is not None:
            body["epsilon"] = epsilon
        if expires_days is not None:
            body["expires_days"] = expires_days
        return self._call("POST", f"/v1/requests/{request_id}/approve", body)

    def deny(self, request_id: str, note: str = "") -> dict[str, Any]:
        return self._call("POST", f"/v1/requests/{request_id}/deny", {"note": note})
