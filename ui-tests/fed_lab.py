"""Demo runners and a JupyterLab wired to them, for the sidebar's UI tests.

Starts three runners on loopback (``silo0`` and ``silo1`` with a training silo and the shared
``test`` set each, connected to the Lab's coordinator; ``vault`` left unconnected, with a one-time
invitation for the tests to paste), then JupyterLab with the jupyter_fed server extension. For the
Access section, a model builder ``analyst`` has two requests waiting at ``silo0`` (whose admin token
the Lab holds), and a model builder ``bob`` has a token for ``vault``. Writes
``<workdir>/ready.json`` (URL, token, invitation, the access fixtures) once the Lab answers, and
runs until SIGINT or SIGTERM, then stops the Lab and the runners.

Usage::

    python ui-tests/fed_lab.py [--port 8899] [--token TOKEN] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from jupyter_fed.demo.data import write_silos
from jupyter_fed.demo.federation import LocalFederation

INVITATION_PASSWORD = "correct horse battery"


def _lab_settings(settings_dir: Path) -> None:
    """User settings that keep pop-ups (news, update checks) from covering the page under test."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/apputils-extension/themes.jupyterlab-settings":
            {"theme": "JupyterLab Light"},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def _invite(fed: LocalFederation, name: str) -> dict[str, Any]:
    """A one-time invitation to runner ``name`` for a new model builder, as a custodian makes it."""
    proc = fed.processes[name]
    with proc.http() as http:
        http.post("/v1/users", json={"name": "guest", "role": "model_builder"}).raise_for_status()
        # Datasets are private unless granted: the invitation grants the runner's one dataset.
        resp = http.post("/v1/invitations", json={"user": "guest", "password": INVITATION_PASSWORD,
                                                  "scopes": ["read_catalog"], "url": proc.url,
                                                  "datasets": ["registry"]})
        resp.raise_for_status()
    return {"runner": name, "blob": resp.json()["blob"], "password": INVITATION_PASSWORD}


def _access_requests(fed: LocalFederation, name: str) -> dict[str, str]:
    """Two requests of a model builder waiting at runner ``name``: one for a dataset it holds,
    one for a name it does not (the custodian's view flags it); their ids by purpose."""
    proc = fed.processes[name]
    with proc.http() as http:
        http.post("/v1/users", json={"name": "analyst", "role": "model_builder"}).raise_for_status()
        resp = http.post("/v1/tokens", json={"user": "analyst", "description": "ui tests"})
        resp.raise_for_status()
    ids = {}
    with proc.http(resp.json()["token"]) as http:
        for purpose, body in {
            "approve": {"dataset": f"train_{name}", "packages": ["ffnet"], "epsilon": 2,
                        "reason": "churn model for the quarterly review"},
            "deny": {"dataset": "payroll", "epsilon": 1, "reason": "salary bands"},
        }.items():
            filed = http.post("/v1/requests", json=body)
            filed.raise_for_status()
            ids[purpose] = filed.json()["request_id"]
    return {"runner": name, **ids}


def _builder_token(fed: LocalFederation, name: str) -> dict[str, Any]:
    """A model builder's token for runner ``name`` (not connected: a test connects it)."""
    proc = fed.processes[name]
    with proc.http() as http:
        http.post("/v1/users", json={"name": "bob", "role": "model_builder"}).raise_for_status()
        resp = http.post("/v1/tokens", json={"user": "bob", "description": "ui tests"})
        resp.raise_for_status()
    return {"runner": name, "user": "bob", "url": proc.url, "token": resp.json()["token"],
            "fingerprint": proc.fingerprint, "home": str(proc.home)}


def _wait_for_lab(url: str, token: str, proc: subprocess.Popen[bytes], log: Path,
                  timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"JupyterLab exited at start (code {proc.returncode}):\n"
                             f"{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}jupyter-fed/api/v1/status?token={token}",
                                        timeout=2) as resp:
                if json.loads(resp.read()).get("ready"):
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"JupyterLab did not answer within {timeout:g} s; see {log}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("FED_UI_PORT", "8899")))
    parser.add_argument("--token", default=os.environ.get("FED_UI_TOKEN", "fed-ui-test-token"))
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for data, runners, the Lab's root and logs "
                             "(default: a temporary folder, removed at exit)")
    parser.add_argument("--rows", type=int, default=600, help="training rows per silo")
    args = parser.parse_args()

    owns = args.workdir is None
    root = Path(tempfile.mkdtemp(prefix="jupyter-fed-ui-")) if owns else args.workdir.resolve()
    marker = root / ".fed_lab"
    if not owns and root.exists() and any(root.iterdir()):
        if not marker.exists():
            raise SystemExit(f"fed_lab: {root} is not empty and not a previous fed_lab workdir")
        shutil.rmtree(root)  # a previous run's leftovers: start clean
    root.mkdir(parents=True, exist_ok=True)
    marker.touch()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    data = root / "data"
    paths = write_silos(data, rows=args.rows, clients=2, test_rows=args.rows // 2)
    vault_data = write_silos(data / "vault", rows=args.rows, clients=1, test_rows=args.rows // 2,
                             seed=11)
    silos = {f"silo{i}": {f"train_silo{i}": paths[f"train_silo{i}"], "test": paths["test"]}
             for i in range(2)}
    silos["vault"] = {"registry": vault_data["train_silo0"]}
    fed = LocalFederation(root / "runners", silos, data)
    lab: subprocess.Popen[bytes] | None = None
    try:
        fed.start()
        invitation = _invite(fed, "vault")
        access = {"requests": _access_requests(fed, "silo0"),
                  "builder": _builder_token(fed, "vault"), "python": sys.executable}
        connected = [r for r in fed.runners if r["name"] != "vault"]

        workspace = root / "lab"
        (workspace / "home").mkdir(parents=True)
        _lab_settings(root / "settings")
        config = root / "jupyter_lab_config.json"
        config.write_text(json.dumps({
            "JupyterFedApp": {"state_dir": str(root / "coordinator"), "runners": connected,
                              "event_keepalive": 5},
            "IdentityProvider": {"token": args.token},
            "ServerApp": {"root_dir": str(workspace / "home"), "open_browser": False,
                          "allow_root": True, "ip": "127.0.0.1", "port": args.port,
                          "port_retries": 0},
            "LabApp": {"user_settings_dir": str(root / "settings"),
                       "workspaces_dir": str(root / "workspaces")},
        }, indent=2))
        log = root / "lab.log"
        with open(log, "ab") as out:
            lab = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", f"--config={config}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=workspace / "home", env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{args.port}/"
        _wait_for_lab(url, args.token, lab, log)
        ready = {"url": url, "token": args.token, "root": str(root),
                 "home": str(workspace / "home"), "runners": [r["name"] for r in connected],
                 "invitation": invitation, "access": access}
        (root / "ready.json").write_text(json.dumps(ready, indent=2))
        print(f"fed_lab: ready at {url}lab?token={args.token} (workdir {root})", flush=True)
        while not stopping and lab.poll() is None:
            time.sleep(0.2)
        if lab.poll() is not None and not stopping:
            print(f"fed_lab: JupyterLab exited (code {lab.returncode}); see {log}", flush=True)
            return 1
        return 0
    finally:
        if lab is not None and lab.poll() is None:
            lab.send_signal(signal.SIGTERM)
            try:
                lab.wait(15)
            except subprocess.TimeoutExpired:
                lab.kill()
                lab.wait()
        fed.stop()
        if owns:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
