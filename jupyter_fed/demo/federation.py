"""Real runner processes on loopback, for the demo, notebooks and integration tests.

Each runner is its own ``jupyter-fed runner serve`` process on an ephemeral port, so what is shown
and tested is exactly what a custodian runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupyter_fed.errors import RunnerUnavailable


def prepare_runner(home: Path, name: str, datasets: Mapping[str, Path | Mapping[str, Any]],
                   data_root: Path, **settings: Any) -> str:
    """``runner init`` + ``runner register`` for each dataset; returns the admin token.

    A dataset is its file, or the fields of its registration (``{"path": …, "id_columns": […],
    …}``)."""
    from jupyter_fed.runner.process import init_runner
    from jupyter_fed.runner.registry import register_dataset
    from jupyter_fed.runner.store import RunnerStore
    from jupyter_fed.wire import DatasetRegistration

    runner_settings, token = init_runner(home, name, [data_root], **settings)
    store = RunnerStore(runner_settings.db_path)
    try:
        for ds_name, entry in datasets.items():
            fields = dict(entry) if isinstance(entry, Mapping) else {"path": entry}
            fields = {"description": f"{ds_name} of {name}", "tags": ["demo"], **fields,
                      "path": str(fields["path"])}
            register_dataset(runner_settings, store, DatasetRegistration(name=ds_name, **fields))
    finally:
        store.close()
    return token


class RunnerProcess:
    """One ``jupyter-fed runner serve`` subprocess."""

    def __init__(self, home: Path, name: str, token: str, port: int = 0,
                 env: dict[str, str] | None = None, insecure_http: bool = False) -> None:
        self.home, self.name, self.token, self.port = home, name, token, port
        self.env = env or {}
        self.insecure_http = insecure_http
        self.fingerprint: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> RunnerProcess:
        ready = self.home / "ready.json"
        ready.unlink(missing_ok=True)
        log = open(self.home / "serve.log", "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_fed.cli", "runner", "serve", "--home", str(self.home),
             "--port", str(self.port), "--ready-file", str(ready),
             *(["--insecure-http"] if self.insecure_http else [])],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        log.close()
        self._ready = ready
        return self

    def wait_ready(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while not self._ready.exists():
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = (self.home / "serve.log").read_text()[-800:]
                raise RunnerUnavailable(f"runner {self.name!r} exited at start (code "
                                        f"{self.proc.returncode})", tail)
            if time.monotonic() > deadline:
                raise RunnerUnavailable(f"runner {self.name!r} did not start in {timeout:g} s", "")
            time.sleep(0.02)
        ready = json.loads(self._ready.read_text())
        self.url, self.fingerprint = ready["url"], ready.get("fingerprint")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout: float = 60.0) -> str:
        """Stop and start again on the same port, as a custodian restarting the service would."""
        self.stop()
        self.start()
        return self.wait_ready(timeout)

    def ssl_context(self) -> Any:
        """An SSL context pinned to this runner's certificate (``True`` for plain HTTP)."""
        if self.fingerprint is None:
            return True
        from jupyter_fed.wire.tls import pinned_context

        return pinned_context("127.0.0.1", self.port, self.fingerprint)

    def http(self, token: str | None = None, **kw: Any) -> Any:
        """A synchronous httpx client for this runner, pinned and authenticated (for tests/tools)."""
        import httpx

        headers = {"Authorization": f"Bearer {token or self.token}"} if token != "" else {}
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), headers=headers, **kw)

    def builder_token(self, user: str, scopes: list[str] | None = None,
                      datasets: list[str] | None = None) -> str:
        """A model builder's token (the user made if new), granted ``datasets`` — by default
        every dataset of the runner: builders see only what is granted to them."""
        with self.http() as admin:
            admin.post("/v1/users", json={"name": user, "role": "model_builder"})  # 409: exists
            names = datasets if datasets is not None else \
                [d["name"] for d in admin.get("/v1/datasets").json()]
            for name in names:
                admin.post("/v1/grants", json={"user": user, "dataset": name}).raise_for_status()
            body: dict[str, Any] = {"user": user, "expires_days": 1}
            if scopes is not None:
                body["scopes"] = scopes
            resp = admin.post("/v1/tokens", json=body)
            resp.raise_for_status()
            return resp.json()["token"]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill(self) -> None:
        """Die abruptly, as a crashed silo would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class LocalFederation:
    """Several runners on this machine, each with its own home folder and datasets.

    Parameters
    ----------
    root
        Folder for the runners' homes.
    silos
        Runner name → {dataset name → file, or its registration's fields (``{"path": …,
        "id_columns": […]}``)}. Files must lie under ``data_root``.
    data_root
        The data root every runner is allowed to read.
    env
        Runner name → extra environment variables for that runner's process.
    insecure_http
        Serve plain HTTP (loopback only) instead of TLS with a pinned certificate.
    """

    def __init__(self, root: Path, silos: Mapping[str, Mapping[str, Path | Mapping[str, Any]]],
                 data_root: Path,
                 env: dict[str, dict[str, str]] | None = None, insecure_http: bool = False,
                 **settings: Any) -> None:
        self.root, self.silos, self.data_root = root, silos, data_root
        self.env = env or {}
        self.insecure_http = insecure_http
        self.settings = settings
        self.processes: dict[str, RunnerProcess] = {}

    def start(self, timeout: float = 60.0) -> LocalFederation:
        try:
            for name, datasets in self.silos.items():
                home = self.root / name
                token = prepare_runner(home, name, datasets, self.data_root, **self.settings)
                self.processes[name] = RunnerProcess(home, name, token, env=self.env.get(name),
                                                     insecure_http=self.insecure_http).start()
            for proc in self.processes.values():
                proc.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def runners(self) -> list[dict[str, Any]]:
        """``[{"name", "url", "token", "fingerprint"}]`` for ``jupyter_fed.connect(runners=...)``."""
        return [{"name": p.name, "url": p.url, "token": p.token, "fingerprint": p.fingerprint}
                for p in self.processes.values()]

    def stop(self) -> None:
        for proc in self.processes.values():  # signal all first, so they shut down in parallel
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGINT)
        for proc in self.processes.values():
            proc.stop()

    def __enter__(self) -> LocalFederation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
