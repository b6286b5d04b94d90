"""Helpers of the privacy attacks: custodian actions over REST, fresh principals, sessions."""

from __future__ import annotations

import uuid
from typing import Any

from jupyter_fed.demo.federation import LocalFederation

TARGET_ROW = 123
"""The row the loss-oracle attack tries to recover."""
TARGET_Y = 37.41


def admin(fed: LocalFederation, runner: str = "p0") -> Any:
    return fed.processes[runner].http(timeout=60)


def register(fed: LocalFederation, runner: str, body: dict[str, Any],
             policy: dict[str, Any] | None = None) -> str:
    """Register a dataset through the runner's REST API (as a custodian would), with a policy."""
    with admin(fed, runner) as http:
        resp = http.post("/v1/datasets", json=body)
        assert resp.status_code == 201, resp.text
        if policy:
            current = http.get(f"/v1/datasets/{body['name']}/policy").json()
            resp = http.put(f"/v1/datasets/{body['name']}/policy", json={**current, **policy})
            assert resp.status_code == 200, resp.text
    return body["name"]


def principal_tokens(fed: LocalFederation) -> tuple[str, list[dict[str, Any]]]:
    """A fresh model builder on every runner: its user name and connect(runners=...) entries."""
    user = "p_" + uuid.uuid4().hex[:8]
    runners = []
    for proc in fed.processes.values():
        with proc.http() as http:
            http.post("/v1/users", json={"name": user, "role": "model_builder"})
            token = http.post("/v1/tokens", json={"user": user}).json()["token"]
        runners.append({"name": proc.name, "url": proc.url, "token": token,
                        "fingerprint": proc.fingerprint})
    return user, runners


def run_analytics(client: Any, package: str, datasets: list[str], data_config: dict[str, Any],
                  model_config: dict[str, Any] | None = None, timeout: float = 90) -> Any:
    """One analytics session over ``datasets``; returns the session (failed or completed)."""
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.errors import SessionFailed

    session = client.create_analytics_session(package, package, "privacy test",
                                              data_config=data_config,
                                              model_config=model_config or {},
                                              num_datasets=len(datasets)).start()
    group = SessionTaskGroup(session)
    for name in datasets:
        group.add_task(client.task_builder().stats(name))
    try:
        group.start().wait(timeout)
    except SessionFailed:
        pass
    return session


def log_text(session: Any) -> str:
    return "\n".join(row["message"] for row in session.logs())
