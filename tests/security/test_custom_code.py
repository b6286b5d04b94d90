"""Issue 17, custom code: a builder's own package runs only as approved, and only in its sandbox.

Real runner processes and a real (embedded) coordinator. The package is ``custom_mean/`` beside
this file: a federated mean, and a ``probe`` step that tries to open a socket or read a file and
hides the failure (``try/except``) — the sandbox must stop and report it anyway.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import make_token

from jupyter_fed.demo.federation import LocalFederation, RunnerProcess
from jupyter_fed.packages.custom import CodeBundle

HERE = Path(__file__).parent
PACKAGE = HERE / "custom_mean"
RUNNERS = ("cc0", "cc1")


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[LocalFederation]:
    silos = {name: {"a": data_root / f"train_silo{i}.parquet", "b": data_root / "test.parquet"}
             for i, name in enumerate(RUNNERS)}
    with LocalFederation(tmp_path_factory.mktemp("custom-code"), silos, data_root, warmup=False,
                         max_workers=2, warm_workers=1, step_timeout=60) as f:
        yield f


@pytest.fixture(scope="module")
def builder(fed: LocalFederation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A model builder's client: its own tokens (default builder scopes), its own coordinator."""
    import jupyter_fed

    runners = []
    for proc in fed.processes.values():
        with proc.http() as admin:
            token = make_token(admin, "ada", "model_builder", None)
        runners.append({"name": proc.name, "url": proc.url, "token": token,
                        "fingerprint": proc.fingerprint})
    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path_factory.mktemp("coord"),
                            runners=runners)
    c.tokens = {r["name"]: r["token"] for r in runners}
    yield c
    c.close()


@pytest.fixture(scope="module")
def submitted(builder: Any) -> dict[str, Any]:
    """The package submitted to both runners (pending)."""
    return {name: builder.submit_code(name, PACKAGE, name="custom_mean",
                                      description="federated mean") for name in RUNNERS}


def _approve(proc: RunnerProcess, code_id: str, datasets: list[str]) -> dict[str, Any]:
    with proc.http() as admin:  # the custodian (admin token)
        resp = admin.post(f"/v1/code/{code_id}/approve", json={"datasets": datasets,
                                                               "note": "reviewed"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _task(proc: RunnerProcess, token: str, package: str, dataset: str, task_id: str,
          step: str = "sums", params: dict[str, Any] | None = None) -> Any:
    spec = {"task_id": task_id, "session_id": "direct", "round": 1, "package": package,
            "step": step, "datasets": {"data": dataset}, "params": params or {"column": "x0"}}
    with proc.http(token, timeout=60) as http:
        return http.post("/v1/tasks", files={"spec": (None, json.dumps(spec))},
                         params={"wait": 30})


def _session(builder: Any, package: str, dataset: str = "a", **model: Any) -> Any:
    from jupyter_fed import SessionTaskGroup

    session = builder.create_fl_session(name="mean", package_name=package, num_rounds=1,
                                        min_num_clients=2, model_config=model,
                                        data_config={"column": "x0"}, max_retries=0,
                                        round_timeout=90).start()
    tb = builder.task_builder()
    SessionTaskGroup(session).add_task(tb.eda(f"cc0/{dataset}")).add_task(
        tb.eda(f"cc1/{dataset}")).start()
    session.wait(120, raise_on_failure=False)
    return session


def _audit(proc: RunnerProcess, **query: Any) -> list[dict[str, Any]]:
    with proc.http() as admin:
        return admin.get("/v1/audit", params={"principal": "ada", **query}).json()


# -- review -------------------------------------------------------------------------------------
def test_the_custodian_sees_the_source_and_its_hash(fed, submitted) -> None:
    # Prepare
    request, proc = submitted["cc0"], fed.processes["cc0"]
    expected = CodeBundle.from_folder(PACKAGE, "custom_mean")

    # Execute
    with proc.http() as admin:
        listed = admin.get("/v1/code", params={"status": "pending"}).json()
        shown = admin.get(f"/v1/code/{request.id}").json()

    # Assert
    assert request.status == "pending" and request.digest == expected.digest
    assert request.package == f"custom:custom_mean@{expected.digest}"
    assert request.id in {r["id"] for r in listed}
    assert shown["files"] == expected.files and shown["principal"] == "ada"


def test_another_builder_neither_sees_nor_approves_the_request(fed, submitted) -> None:
    proc = fed.processes["cc0"]
    with proc.http() as admin:
        other = make_token(admin, "bob", "model_builder", None)
    with proc.http(other) as http:
        assert http.get("/v1/code").json() == []
        assert http.get(f"/v1/code/{submitted['cc0'].id}").status_code == 404
        resp = http.post(f"/v1/code/{submitted['cc0'].id}/approve", json={"datasets": ["a"]})
    assert resp.status_code == 403


def test_only_text_files_are_accepted(fed, builder) -> None:
    with fed.processes["cc0"].http(builder.tokens["cc0"]) as http:
        resp = http.post("/v1/code", json={"name": "evil", "files": {
            "local.py": "def fit(*a): pass\n", "plan.py": "class P(Plan): pass\n",
            "weights.pkl": "\x80\x04K\x01."}})
    assert resp.status_code == 422
    assert "weights.pkl" in resp.json()["message"]


# -- what runs ----------------------------------------------------------------------------------
def test_unapproved_code_is_refused(fed, builder, submitted) -> None:
    # Execute: a step of the pending request, and a session of it
    resp = _task(fed.processes["cc0"], builder.tokens["cc0"], submitted["cc0"].package, "a",
                 "unapproved")
    session = _session(builder, submitted["cc0"].package)

    # Assert
    assert resp.status_code == 403, resp.text
    assert "pending, not approved" in resp.json()["message"]
    assert session.info()["status"] == "failed"


def test_approved_code_runs_end_to_end(fed, builder, submitted, data_root) -> None:
    # Prepare: the custodian approves it for dataset "a" on both runners (one through the CLI)
    _approve(fed.processes["cc0"], submitted["cc0"].id, ["a"])
    cli = subprocess.run([sys.executable, "-m", "jupyter_fed.cli", "runner", "code", "approve",
                          submitted["cc1"].id, "--dataset", "a", "--note", "ok",
                          "--home", str(fed.processes["cc1"].home)],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert submitted["cc1"].refresh().status == "approved"

    # Execute
    session = _session(builder, submitted["cc0"].package)

    # Assert: the pooled mean of both silos' column, exactly
    info = session.info()
    assert info["status"] == "completed", info
    rows = pd.concat([pd.read_parquet(data_root / f"train_silo{i}.parquet") for i in range(2)])
    result = session.model()
    assert result.n == len(rows)
    assert result.mean == pytest.approx(rows["x0"].mean(), rel=1e-12)
    ok = _audit(fed.processes["cc0"], outcome="ok")
    assert any(r["method"] == "STEP" and r["package"] == submitted["cc0"].package for r in ok)


def test_modified_code_is_refused(fed, builder, submitted) -> None:
    # Prepare: the approved package with one byte changed
    bundle = CodeBundle.from_folder(PACKAGE, "custom_mean")
    files = dict(bundle.files)
    files["local.py"] = files["local.py"].replace("x.sum()", "x.sum() ")
    changed = CodeBundle("custom_mean", files)
    _approve(fed.processes["cc0"], submitted["cc0"].id, ["a"])

    # Execute: run it without submitting it, then submitted but not approved
    unsubmitted = _task(fed.processes["cc0"], builder.tokens["cc0"], changed.package, "a",
                        "modified-1")
    builder.submit_code("cc0", changed)
    pending = _task(fed.processes["cc0"], builder.tokens["cc0"], changed.package, "a",
                    "modified-2")

    # Assert
    assert changed.digest != bundle.digest
    assert unsubmitted.status_code == 403 and "modified" in unsubmitted.json()["message"]
    assert pending.status_code == 403 and "not approved" in pending.json()["message"]


def test_code_approved_for_one_dataset_is_refused_on_another(fed, builder, submitted) -> None:
    # Prepare
    _approve(fed.processes["cc0"], submitted["cc0"].id, ["a"])

    # Execute
    resp = _task(fed.processes["cc0"], builder.tokens["cc0"], submitted["cc0"].package, "b",
                 "other-dataset")
    session = _session(builder, submitted["cc0"].package, dataset="b")

    # Assert
    assert resp.status_code == 403
    assert "not approved for dataset(s) b" in resp.json()["message"]
    assert session.info()["status"] == "failed"


def test_another_builder_cannot_run_approved_code(fed, submitted) -> None:
    proc = fed.processes["cc0"]
    _approve(proc, submitted["cc0"].id, ["a"])
    with proc.http() as admin:
        other = make_token(admin, "bob", "model_builder", None)
    resp = _task(proc, other, submitted["cc0"].package, "a", "not-mine")
    assert resp.status_code == 403, resp.text


# -- the sandbox --------------------------------------------------------------------------------
def _until_done(proc: RunnerProcess, token: str, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    with proc.http(token, timeout=40) as http:
        while True:
            st = http.get(f"/v1/tasks/{task_id}", params={"wait": 10}).json()
            if st["state"] in ("succeeded", "failed", "cancelled") or \
                    time.monotonic() > deadline:
                return st


def test_code_that_opens_a_socket_fails_and_is_reported(fed, builder, submitted) -> None:
    # Prepare: a port listening on loopback, and the code approved
    for name in RUNNERS:
        _approve(fed.processes[name], submitted[name].id, ["a"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]

    # Execute: a session whose first step connects to it (and hides its failure)
    session = _session(builder, submitted["cc0"].package, probe={"kind": "socket", "port": port})

    # Assert: nobody connected; the builder and the custodian both learn why
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()
    info = session.info()
    assert info["status"] == "failed"
    assert "sandbox" in info["error"] or "socket" in info["error"], info["error"]
    denied = _audit(fed.processes["cc0"], outcome="denied")
    assert any(r["method"] == "STEP" and r["step"] == "probe" for r in denied)


def test_code_that_reads_outside_its_dataset_fails_and_is_reported(fed, builder, submitted,
                                                                   tmp_path) -> None:
    # Prepare: a secret beside (not under) the data root, and the runner's own database
    proc = fed.processes["cc0"]
    _approve(proc, submitted["cc0"].id, ["a"])
    secret = tmp_path / "secret.txt"
    secret.write_text("the custodian's secret")
    for task_id, path in (("read-secret", secret), ("read-db", proc.home / "runner.db")):
        # Execute
        resp = _task(proc, builder.tokens["cc0"], submitted["cc0"].package, "a", task_id,
                     step="probe", params={"probe": {"kind": "read", "path": str(path)}})
        assert resp.status_code == 202, resp.text
        st = _until_done(proc, builder.tokens["cc0"], task_id)

        # Assert
        assert st["state"] == "failed", st
        assert st["error"]["code"] == "sandbox_violation", st
        assert str(path) in st["error"]["message"]
    denied = _audit(proc, outcome="denied")
    assert {"/v1/tasks/read-secret", "/v1/tasks/read-db"} <= {r["path"] for r in denied}


def test_the_kernel_walls_hold_without_the_audit_hook(fed, tmp_path) -> None:
    """Network namespace and Landlock alone (no audit hook): what native code would meet."""
    listener = socket.create_server(("127.0.0.1", 0))
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    box_dir = tmp_path / "box"
    box_dir.mkdir()
    script = f"""
import json, socket
from jupyter_fed.runner._sandbox import confine
box = {{"tmp": {str(box_dir)!r}, "read": [], "sensitive": [{str(tmp_path)!r}]}}
enforced = confine(box)
out = {{"landlock": enforced["landlock_abi"]}}
try:
    socket.create_connection(("127.0.0.1", {listener.getsockname()[1]}), timeout=2)
    out["socket"] = "connected"
except OSError as exc:
    out["socket"] = type(exc).__name__
try:
    open({str(secret)!r}).read()
    out["read"] = "read"
except OSError as exc:
    out["read"] = type(exc).__name__
open("scratch.txt", "w").write("ok")
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env={**os.environ})
    listener.close()
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["socket"] != "connected"
    if out["landlock"]:
        assert out["read"] == "PermissionError"
    assert (box_dir / "scratch.txt").read_text() == "ok"


def test_a_torch_module_and_loader_train_by_fedavg(fed, builder, data_root) -> None:
    """The torch form: ``Model(nn.Module)`` + ``load(dataset, data)`` in one file."""
    from jupyter_fed import SessionTaskGroup

    # Prepare: submitted as a module file, approved on both runners
    requests = {name: builder.submit_code(name, HERE / "custom_torch_model.py", name="linear")
                for name in RUNNERS}
    for name, request in requests.items():
        _approve(fed.processes[name], request.id, ["a"])

    # Execute
    session = builder.create_fl_session(
        name="torch", package_name=requests["cc0"].package, num_rounds=2, min_num_clients=2,
        model_config={"lr": 0.05, "epochs": 2, "batch_size": 64, "model_args": {"inputs": 3}},
        data_config={"predictors": ["x0", "x1", "x2"], "target": "y"}, max_retries=0).start()
    tb = builder.task_builder()
    SessionTaskGroup(session).add_task(tb.hfl("cc0/a")).add_task(tb.hfl("cc1/a")).start()
    session.wait(180, raise_on_failure=False)

    # Assert: trained, and the kernel gets the builder's own module back
    info = session.info()
    assert info["status"] == "completed", info
    import numpy as np
    import torch

    losses = [r["train_loss"] for r in session.metrics().as_dict()["federated_metrics"]]
    assert len(losses) == 2 and np.isfinite(losses).all()
    net = session.model().as_pytorch()
    assert type(net).__name__ == "Model" and net.linear.in_features == 3
    rows = pd.read_parquet(data_root / "train_silo0.parquet")
    x = torch.tensor(rows[["x0", "x1", "x2"]].to_numpy(np.float32))
    y = torch.tensor(rows[["y"]].to_numpy(np.float32))
    torch.manual_seed(0)
    untrained = type(net)(inputs=3)
    with torch.no_grad():
        assert float(((net(x) - y) ** 2).mean()) < float(((untrained(x) - y) ** 2).mean())
