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
    """Register a dataset through the runner's REST API (as a custodian would), with a policy;
    public, so the tests' fresh principals may use it (the attacks need access, not a grant)."""
    policy = {"public": True, **(policy or {})}
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
        token = proc.builder_token(user)
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


def train_alone(client: Any, dataset: str, model_config: dict[str, Any],
                data_config: dict[str, Any], runner: str = "p0", rounds: int = 2) -> Any:
    """An honest ffnet session of one client on ``dataset``, run to its end."""
    from jupyter_fed import SessionTaskGroup

    session = client.create_fl_session(name="fit", min_num_clients=1, num_rounds=rounds,
                                       package_name="ffnet", model_config=model_config,
                                       data_config=data_config).start()
    SessionTaskGroup(session).add_task(client.task_builder().hfl(dataset, runner=runner)
                                       ).start().wait(60)
    return session


def log_text(session: Any) -> str:
    return "\n".join(row["message"] for row in session.logs())


def post_task(http: Any, spec: dict[str, Any], tensors: bytes | None = None) -> Any:
    """``POST /v1/tasks`` as a coordinator (or a hostile client) sends it."""
    import json

    files: dict[str, Any] = {"spec": (None, json.dumps(spec), "application/json")}
    if tensors:
        files["tensors"] = ("t", tensors, "application/octet-stream")
    return http.post("/v1/tasks", files=files)


def task_outcome(http: Any, spec: dict[str, Any], tensors: bytes | None = None) -> dict[str, Any]:
    """Submit, wait for the end, return {status code, bodies}: every text the runner sent back."""
    submitted = post_task(http, spec, tensors)
    out: dict[str, Any] = {"submit": submitted.status_code, "texts": [submitted.text]}
    if submitted.status_code == 202:
        status = http.get(f"/v1/tasks/{spec['task_id']}", params={"wait": 60})
        out["texts"].append(status.text)
        out["status"] = status.json()
        if out["status"]["state"] == "succeeded":
            out["result"] = http.get(f"/v1/tasks/{spec['task_id']}/result").content
    return out
