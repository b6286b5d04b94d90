"""The SDK's backend over a Jupyter server's jupyter-fed REST API, and finding that server.

``RestBackend`` implements the SDK's :class:`~jupyter_fed.client._backend.Backend` protocol over
HTTP, as ``EmbeddedBackend`` does in-process, so ``Client``, ``Session`` and task groups run
unchanged against either.
Error bodies are turned back into the same ``FedError`` subclasses the coordinator raised.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from jupyter_fed.errors import AuthError, FedError, NotFoundError, error_from_body
from jupyter_fed.wire.models import TERMINAL_STATUSES as TERMINAL

__all__ = ["API_PATH", "RestBackend", "find_server", "running_servers"]

API_PATH = "jupyter-fed/api/v1/"


class RestBackend:
    """Forwards SDK calls to ``<url>/jupyter-fed/api/v1`` with Jupyter's token authentication.

    Parameters
    ----------
    url
        The Jupyter server's URL including its base URL, e.g. ``http://localhost:8888/``.
    token
        The server's token (``jupyter server list`` shows it); ``None`` sends no credentials.
    timeout
        Seconds to wait for an ordinary request; long polls get their own, longer, limit.
    poll
        Seconds one ``wait`` request may be held open by the server (which caps it too).
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0,
                 poll: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/"
        self.poll = poll
        headers = {"User-Agent": "jupyter-fed-sdk"}
        if token:
            headers["Authorization"] = f"token {token}"
        self._http = httpx.Client(base_url=self.url + API_PATH, headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=10.0))

    def __repr__(self) -> str:
        return f"<RestBackend {self.url}>"

    # transport ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise FedError(f"the Jupyter server at {self.url} did not answer: {type(exc).__name__}",
                           "check that it is running, or use jupyter_fed.connect(embedded=True)") \
                from None
        if resp.status_code < 400:
            return resp
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and body.get("code")):
            raise self._foreign_error(resp)
        raise error_from_body(body, resp.status_code)

    def _foreign_error(self, resp: httpx.Response) -> FedError:
        """An error that did not come from our handlers: the extension is missing, or auth failed."""
        if resp.status_code == 404:
            return NotFoundError(f"the jupyter_fed server extension is not enabled on {self.url}",
                                 "pip install jupyter-fed where the server runs and restart it, "
                                 "or use jupyter_fed.connect(embedded=True)")
        if resp.status_code in (401, 403):
            return AuthError(f"the Jupyter server at {self.url} refused the token",
                             "pass token=...; `jupyter server list` shows it")
        return error_from_body({"message": resp.text[:200] or f"HTTP {resp.status_code}"},
                               resp.status_code)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._request(method, path, **kw)
        return None if resp.status_code == 204 else resp.json()

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        """``{version, api, ready}`` of the server's extension (raises if it is not there)."""
        return self._json("GET", "status", **({} if timeout is None else {"timeout": timeout}))

    def close(self) -> None:
        self._http.close()

    # the Backend protocol (client/_backend.py) ------------------------------------------------------------
    def add_runner(self, name: str, url: str, token: str, fingerprint: str | None = None
                         ) -> dict[str, Any]:
        return self._json("POST", "runners", json={"name": name, "url": url, "token": token,
                                                   "fingerprint": fingerprint})

    def add_runners(self, runners: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.add_runner(r["name"], r["url"], r["token"], r.get("fingerprint"))
                for r in runners]

    def join_invitation(self, blob: str, password: str, name: str | None = None
                              ) -> dict[str, Any]:
        return self._json("POST", "invitations", json={"blob": blob, "password": password,
                                                       "name": name})

    def runner_admin(self, runner: str, method: str, path: str, body: Any = None,
                           params: dict[str, Any] | None = None) -> Any:
        return self._json("POST", f"runners/{_seg(runner)}/admin",
                          json={"method": method, "path": path, "body": body, "params": params})

    def remove_runner(self, name: str) -> None:
        self._json("DELETE", f"runners/{_seg(name)}")

    def runners(self) -> list[dict[str, Any]]:
        return self._json("GET", "runners")

    def catalog(self) -> dict[str, Any]:
        return self._json("GET", "datasets")

    def packages(self) -> list[dict[str, Any]]:
        return self._json("GET", "packages")

    def add_code(self, name: str, files: dict[str, str]) -> dict[str, Any]:
        return self._json("POST", "code", json={"name": name, "files": files})

    def create_session(self, **kwargs: Any) -> dict[str, Any]:
        return self._json("POST", "sessions", json=kwargs)

    def sessions(self) -> list[dict[str, Any]]:
        return self._json("GET", "sessions")

    def session(self, sid: str) -> dict[str, Any]:
        return self._json("GET", f"sessions/{_seg(sid)}")

    def start_session(self, sid: str) -> dict[str, Any]:
        return self._json("POST", f"sessions/{_seg(sid)}/start")

    def cancel(self, sid: str) -> dict[str, Any]:
        return self._json("POST", f"sessions/{_seg(sid)}/cancel")

    def resume(self, sid: str) -> dict[str, Any]:
        return self._json("POST", f"sessions/{_seg(sid)}/resume")

    def join(self, sid: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._json("POST", f"sessions/{_seg(sid)}/join", json={"tasks": tasks})

    def wait(self, sid: str, timeout: float | None = None,
                   after_round: int | None = None) -> dict[str, Any]:
        # The server holds a long poll for at most `poll` seconds; chain them up to `timeout`.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = self.poll if left is None else min(self.poll, left)
            params: dict[str, Any] = {"timeout": step}
            if after_round is not None:
                params["after_round"] = after_round
            info = self._json("GET", f"sessions/{_seg(sid)}/wait", params=params,
                              timeout=step + 30.0)
            if info["status"] in TERMINAL or (deadline is not None
                                              and time.monotonic() >= deadline) or \
                    (after_round is not None and info["current_round"] > after_round):
                return info

    def metrics(self, sid: str) -> dict[str, Any]:
        return self._json("GET", f"sessions/{_seg(sid)}/metrics")

    def rounds(self, sid: str) -> list[dict[str, Any]]:
        return self._json("GET", f"sessions/{_seg(sid)}/rounds")

    def logs(self, sid: str, after: int = 0) -> list[dict[str, Any]]:
        return self._json("GET", f"sessions/{_seg(sid)}/logs", params={"after": after})

    def simulate(self, **kwargs: Any) -> dict[str, Any]:
        """``POST /simulations``: the rows are read here and sent as parquet, so the server
        reads no path of this kernel's."""
        import base64

        from jupyter_fed.errors import ConfigError

        engine = kwargs.get("engine")
        if not isinstance(engine, str):
            raise ConfigError("a server's coordinator takes engine='local', 'ray' or 'dask' by "
                              "name", "pass the name, with engine_options as JSON")
        body = dict(kwargs)
        for key in ("dataset", "test"):
            rows = body.pop(key)
            body[f"{key}_parquet"] = None if rows is None else \
                base64.b64encode(_parquet_bytes(rows)).decode()
        if isinstance(body.get("partitions"), (list, tuple)):
            body["partitions"] = [[int(i) for i in p] for p in body["partitions"]]
        return self._json("POST", "simulations", json=body)  # type: ignore[no-any-return]

    def artefact_bytes(self, sid: str) -> tuple[bytes, dict[str, Any]]:
        resp = self._request("GET", f"sessions/{_seg(sid)}/artefact")
        inline = resp.headers.get("X-Fed-Artefact-Meta")
        if inline is not None:
            meta = json.loads(inline)
        else:  # too big for a header: the round came along, so the two describe the same model
            meta = self._json("GET", f"sessions/{_seg(sid)}/artefact/meta")
            meta["round"] = int(resp.headers["X-Fed-Artefact-Round"])
        return resp.content, meta



def _parquet_bytes(rows: Any) -> bytes:
    """A DataFrame, arrow table or parquet/csv path as parquet bytes."""
    import io
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if isinstance(rows, (str, Path)):
        path = Path(rows).expanduser()
        if path.suffix.lower() != ".csv":
            return path.read_bytes()
        rows = pacsv.read_csv(path)
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows,
                                                                         preserve_index=False)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _seg(value: str) -> str:
    return quote(str(value), safe="")


# finding the Jupyter server that started this kernel ------------------------------------------
def running_servers(runtime_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The ``jpserver-*.json`` records of live Jupyter servers of this user.

    Read directly rather than through ``jupyter_server.serverapp.list_running_servers``: that
    import costs more than a second in a kernel, this costs a directory listing.
    """
    from jupyter_core.paths import jupyter_runtime_dir

    folder = Path(runtime_dir or jupyter_runtime_dir())
    out = []
    for path in sorted(folder.glob("jpserver-*.json")):
        try:
            info = json.loads(path.read_text())
            os.kill(int(info["pid"]), 0)  # still running?
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out.append(info)
    return out


def _candidates(servers: list[dict[str, Any]], cwd: Path, parent_pid: int | None) -> list[dict[str, Any]]:
    """The server that launched this kernel first, then those whose root holds the cwd, innermost first."""
    def holds_cwd(info: dict[str, Any]) -> bool:
        root = Path(info.get("root_dir") or info.get("notebook_dir") or "/").resolve()
        return cwd == root or root in cwd.parents

    parent = [s for s in servers if parent_pid is not None and s.get("pid") == parent_pid]
    rooted = sorted((s for s in servers if s not in parent and holds_cwd(s)),
                    key=lambda s: -len(str(s.get("root_dir", ""))))
    return parent + rooted


def find_server(timeout: float = 2.0) -> RestBackend | None:
    """The Jupyter server hosting this kernel, if it runs the jupyter_fed extension.

    Only inside a kernel a Jupyter server started (``JPY_PARENT_PID`` or ``JPY_SESSION_NAME`` is
    set): a plain script gets ``None`` and so the embedded coordinator. Each candidate is probed at
    ``/jupyter-fed/api/v1/status``; a server without the extension is skipped.
    """
    parent = os.environ.get("JPY_PARENT_PID")
    if not (parent or os.environ.get("JPY_SESSION_NAME")):
        return None
    parent_pid = int(parent) if parent and parent.isdigit() else None
    for info in _candidates(running_servers(), Path.cwd().resolve(), parent_pid):
        if info.get("sock"):  # a unix-socket server: not reachable over TCP
            continue
        backend = RestBackend(info["url"], info.get("token") or None)
        try:
            backend.status(timeout=timeout)
        except FedError:
            backend.close()
            continue
        return backend
    return None


def token_for(url: str) -> str | None:
    """The token of the running local server at ``url``, else ``$JUPYTER_TOKEN``, else ``None``."""
    want = url.rstrip("/") + "/"
    for info in running_servers():
        if str(info.get("url", "")).rstrip("/") + "/" == want and info.get("token"):
            return str(info["token"])
    return os.environ.get("JUPYTER_TOKEN") or None
