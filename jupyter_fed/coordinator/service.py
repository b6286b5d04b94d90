"""The coordinator: runner connections, the catalog across runners, and sessions.

It is a plain asyncio library object. The Jupyter server extension, the headless
``jupyter fed coordinator`` and the SDK's embedded mode all drive this one class; none of them
re-implements session logic.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Any

from jupyter_fed.coordinator.engine import Policy, RunContext, SessionRun
from jupyter_fed.coordinator.runners import RunnerClient
from jupyter_fed.coordinator.store import CoordinatorStore
from jupyter_fed.errors import (
    ConfigError,
    ConflictError,
    FedError,
    NotFoundError,
)
from jupyter_fed.packages import get_package, parse_config
from jupyter_fed.wire import NAME_RE
from jupyter_fed.wire.models import TERMINAL_STATUSES as TERMINAL

log = logging.getLogger("jupyter_fed.coordinator")



class Coordinator:
    """Sessions, rounds and runner connections, persisted under ``state_dir``.

    Parameters
    ----------
    state_dir
        Folder for ``coordinator.db`` and model artefacts.
    """

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir)
        self._lock_file = _lock_state_dir(self.state_dir)
        self.store = CoordinatorStore(self.state_dir / "coordinator.db")
        self.artefacts = self.state_dir / "artefacts"
        self._runners: dict[str, RunnerClient] = {}
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._changed = asyncio.Event()
        self._rows: dict[tuple[str, str], int] = {}
        self.ctx = RunContext(store=self.store, artefacts=self.artefacts, runner=self.runner,
                              emit=self._emit, row_counts=self._row_count)

    async def start(self) -> list[str]:
        """Resume what a previous process left running; returns the ids of resumed sessions.

        A session that was running continues from its last committed round (with a new attempt
        number, so runners never confuse its new tasks with the old ones). If one of its runners
        is unreachable it is marked ``interrupted``; ``resume(session_id)`` continues it later.
        """
        resumed = []
        for rec in self.store.sessions():
            if rec["status"] == "running":
                names = {c["runner"] for c in self.store.clients(rec["id"])
                         if c["status"] in ("joined", "active")}
                health = await asyncio.gather(*(self.runner(n).health() for n in names),
                                              return_exceptions=True)
                down = [n for n, h in zip(names, health, strict=True)
                        if isinstance(h, BaseException) or h.get("status") != "ok"]
                if down:
                    self.store.set_status(rec["id"], "interrupted",
                                          error=f"runner(s) {', '.join(sorted(down))} unreachable "
                                                "after a coordinator restart")
                    self.store.log(rec["id"], "warning", "interrupted: runner(s) "
                                   f"{', '.join(sorted(down))} unreachable; call resume() when "
                                   "they are back")
                    continue
                self._relaunch(rec["id"])
                resumed.append(rec["id"])
            elif rec["status"] == "pending":
                self._maybe_run(rec["id"])
        return resumed

    async def resume(self, sid: str) -> dict[str, Any]:
        """Continue an interrupted session from its last committed round."""
        rec = self.session(sid)
        if rec["status"] not in ("interrupted", "running") or sid in self._runs:
            raise ConflictError(f"session {sid} is {rec['status']}; only an interrupted session "
                                "can be resumed", "")
        self.store.set_status(sid, "running", error="")
        self._relaunch(sid)
        return self.session(sid)

    def _relaunch(self, sid: str) -> None:
        rec = self.store.session(sid)
        assert rec is not None
        self.store.set_status(sid, rec["status"], attempt=rec["attempt"] + 1)
        self.store.log(sid, "info", f"resuming after round {rec['current_round']} "
                       f"(attempt {rec['attempt'] + 1})")
        self._launch(sid)

    async def aclose(self) -> None:
        """Stop driving sessions (they stay 'running' and resume at the next start) and close."""
        runs = list(self._runs.values())
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for client in self._runners.values():
            await client.aclose()
        self._runners.clear()
        self.store.close()
        self._lock_file.close()  # releases the folder for the next coordinator

    # events ---------------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        for q in list(self._subscribers):
            q.put_nowait(event)
        self._changed.set()
        self._changed = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving every event (round ends, status changes, logs) from now on."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(q)

    # runners --------------------------------------------------------------------------------
    def runner(self, name: str) -> RunnerClient:
        client = self._runners.get(name)
        if client is None:
            row = next((r for r in self.store.runners() if r["name"] == name), None)
            if row is None:
                raise NotFoundError(f"no runner named {name!r}", "add it with client.add_runner()")
            client = self._runners[name] = RunnerClient(name, row["url"], row["token"],
                                                        fingerprint=row["fingerprint"])
        return client

    async def add_runner(self, name: str, url: str, token: str,
                         fingerprint: str | None = None) -> dict[str, Any]:
        """Connect a runner after checking its address, certificate, and that it takes the token."""
        if not NAME_RE.match(name):
            raise ConfigError(f"runner name {name!r} is invalid",
                              "start with a letter; use letters, digits, '-' and '_'")
        probe = RunnerClient(name, url, token, fingerprint=fingerprint)
        try:
            # reaches it, checks the pinned certificate and the token
            _, health = await asyncio.gather(probe.datasets(), probe.health())
        except BaseException:
            await probe.aclose()
            raise
        same = next((r for r in self.store.runners() if r["name"] == name
                     and (r["url"], r["token"], r["fingerprint"]) == (url, token, fingerprint)),
                    None)
        if same is not None and name in self._runners:
            await probe.aclose()  # unchanged: running sessions keep the connection they use
        else:
            old = self._runners.pop(name, None)
            if old is not None:  # steps in flight still hold it: close it once they are done
                asyncio.get_running_loop().call_later(
                    300, lambda: asyncio.ensure_future(old.aclose()))
            self.store.put_runner(name, url, token, fingerprint)
            self._runners[name] = probe  # its TLS connection is warm: the first round reuses it
        return {"name": name, "url": url, "fingerprint": fingerprint,
                **{k: health.get(k) for k in ("version", "latency_ms")}}

    async def add_runners(self, runners: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Connect several runners at once (``{name, url, token, fingerprint}`` each)."""
        return list(await asyncio.gather(*(self.add_runner(r["name"], r["url"], r["token"],
                                                           r.get("fingerprint"))
                                           for r in runners)))

    async def join_invitation(self, blob: str, password: str, name: str | None = None
                              ) -> dict[str, Any]:
        """Open an invitation, redeem it at its runner (once), and keep the connection.

        The token inside never leaves the coordinator: the kernel and the browser only ever see
        the runner's name, URL and fingerprint.
        """
        from jupyter_fed.wire.invitation import open_blob

        inv = open_blob(blob, password)
        name = name or inv["runner"]
        if not NAME_RE.match(name):
            raise ConfigError(f"runner name {name!r} is invalid", "pass name=")
        client = RunnerClient(name, inv["url"], inv["token"], fingerprint=inv.get("fingerprint"))
        try:
            await client.admin("POST", f"/v1/invitations/{inv['invitation']}/redeem")
        finally:
            await client.aclose()
        return await self.add_runner(name, inv["url"], inv["token"], inv.get("fingerprint"))

    async def runner_admin(self, runner: str, method: str, path: str, body: Any = None,
                           params: dict[str, Any] | None = None) -> Any:
        """Forward an administrative call to a runner with the stored token (``client.auth``)."""
        if not path.startswith("/v1/") or ".." in path:
            raise ConfigError(f"not a runner API path: {path!r}", "")
        return await self.runner(runner).admin(method, path, body, params)

    async def remove_runner(self, name: str) -> None:
        if not self.store.delete_runner(name):
            raise NotFoundError(f"no runner named {name!r}", "")
        client = self._runners.pop(name, None)
        if client is not None:
            await client.aclose()

    async def runners(self) -> list[dict[str, Any]]:
        """Every connection with its health, latency and number of datasets (tokens never shown)."""
        rows = self.store.runners()

        async def one(row: dict[str, Any]) -> dict[str, Any]:
            client = self.runner(row["name"])
            health = await client.health()
            out = {"name": row["name"], "url": row["url"], "status": health["status"],
                   "latency_ms": health.get("latency_ms"), "version": health.get("version"),
                   "datasets": None, "error": health.get("error")}
            if health["status"] == "ok":
                try:
                    out["datasets"] = len(await client.datasets())
                except FedError as exc:
                    out["status"], out["error"] = "error", exc.message
            return out

        return list(await asyncio.gather(*(one(r) for r in rows)))

    async def catalog(self) -> dict[str, Any]:
        """Datasets across runners; unreachable runners are listed under ``errors``, not fatal."""
        rows = self.store.runners()
        results = await asyncio.gather(*(self.runner(r["name"]).datasets() for r in rows),
                                       return_exceptions=True)
        datasets, errors = [], []
        for row, res in zip(rows, results, strict=True):
            if isinstance(res, BaseException):
                errors.append({"runner": row["name"], "message": getattr(res, "message", str(res))})
                continue
            for info in res:
                self._rows[(row["name"], info.name)] = info.num_rows
                datasets.append({"runner": row["name"], **info.model_dump(mode="json")})
        return {"datasets": datasets, "errors": errors}

    async def _row_count(self, runner: str, dataset: str) -> int | None:
        if (runner, dataset) not in self._rows:
            try:
                await self.catalog()
            except FedError:
                return None
        return self._rows.get((runner, dataset))

    # sessions -------------------------------------------------------------------------------
    def create_session(self, *, name: str, description: str = "", package_name: str,
                       min_num_clients: int, num_rounds: int, model_config: dict[str, Any],
                       data_config: dict[str, Any], policy: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
        """Validate the configuration against the package's plan, then record the session."""
        package = get_package(package_name)
        if not isinstance(num_rounds, int) or not 1 <= num_rounds <= 100_000:
            raise ConfigError("invalid session: num_rounds: must be an integer from 1 to 100000",
                              "fix the field named",
                              details=[{"field": "num_rounds", "error": "out of range"}])
        pol = parse_config(Policy, {"min_num_clients": min_num_clients, **(policy or {})},
                           "").model_dump()
        package.load_plan()(model_config, data_config, num_rounds)  # validates both configs
        sid = secrets.token_hex(5)
        config = {"min_num_clients": min_num_clients, "num_rounds": num_rounds,
                  "model_config": model_config, "data_config": data_config, "policy": pol}
        self.store.create_session(sid, name, description, package.name, config)
        self.store.log(sid, "info", f"created {package.name} session {name!r}")
        return self.session(sid)

    def session(self, sid: str) -> dict[str, Any]:
        rec = self.store.session(sid)
        if rec is None:
            raise NotFoundError(f"no session {sid!r}", "list sessions with client.sessions()")
        clients = self.store.clients(sid)
        live = self.ctx.live.get(sid, {})
        for c in clients:
            c.update({k: v for k, v in live.get(c["client_id"], {}).items() if k != "state"})
        cfg = rec["config"]
        return {"id": sid, "name": rec["name"], "description": rec["description"],
                "package": rec["package"], "status": rec["status"], "error": rec["error"],
                "current_round": min(rec["current_round"], cfg["num_rounds"]),
                "num_rounds": cfg["num_rounds"], "min_num_clients": cfg["min_num_clients"],
                "created_at": rec["created_at"], "started_at": rec["started_at"],
                "finished_at": rec["finished_at"], "clients": clients, "config": cfg,
                "warnings": self.store.warnings(sid)}

    def sessions(self) -> list[dict[str, Any]]:
        return [self.session(r["id"]) for r in self.store.sessions()]

    def start_session(self, sid: str) -> dict[str, Any]:
        """Open a created session for clients to join (status 'pending')."""
        rec = self.session(sid)
        if rec["status"] != "created":
            raise ConflictError(f"session {sid} is {rec['status']}, it can only start once", "")
        self.store.set_status(sid, "pending")
        self.store.log(sid, "info", f"waiting for {rec['min_num_clients']} client(s) to join")
        self._emit({"type": "status", "session_id": sid, "status": "pending"})
        self._maybe_run(sid)
        return self.session(sid)

    async def join(self, sid: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add clients (one per task: a runner and its datasets by role) to a session.

        Each client's datasets are checked against the session's configuration (columns, id
        columns, class labels) from the catalog before anything is dispatched. A refused join
        fails the session with the reason, so no session is left waiting for clients forever.
        """
        rec = self.session(sid)
        if rec["status"] not in ("created", "pending"):
            raise ConflictError(f"session {sid} is {rec['status']}; clients can join only before "
                                "it runs", "create a new session")
        try:
            clients = await self._resolve_clients(rec, tasks)
        except FedError as exc:
            self._fail(sid, f"join refused: {exc.message}")
            raise
        self.store.add_clients(sid, clients)
        for c in clients:
            self.store.log(sid, "info", f"client {c['client_id']} joined", c["client_id"])
        self._maybe_run(sid)
        return self.session(sid)["clients"]

    async def _resolve_clients(self, rec: dict[str, Any], tasks: list[dict[str, Any]]
                               ) -> list[dict[str, Any]]:
        """Each task's runner and datasets, checked against the catalog and the plan's config."""
        catalog = await self.catalog()
        where: dict[str, list[str]] = {}
        infos: dict[tuple[str, str], dict[str, Any]] = {}
        for d in catalog["datasets"]:
            where.setdefault(d["name"], []).append(d["runner"])
            infos[(d["runner"], d["name"])] = d
        package = get_package(rec["package"])
        primary = package.roles[0]
        clients, taken = [], {c["client_id"] for c in rec["clients"]}
        for i, task in enumerate(tasks):
            datasets = {k: v for k, v in task["datasets"].items() if v}
            stray = sorted(set(datasets) - set(package.roles))
            if stray or primary not in datasets:
                given = ", ".join(sorted(datasets)) or "none"
                raise ConfigError(f"task {i}: {package.name} clients bring datasets as "
                                  f"{' and '.join(package.roles)} ({primary} required); this task "
                                  f"gives {given}",
                                  "use task_builder().hfl(train, test) for training packages and "
                                  ".eda(dataset) / .stats(dataset) for analytics packages")
            runner = task.get("runner")
            for role, ref in list(datasets.items()):
                # "runner/dataset" names one of several same-named datasets (names have no "/")
                named, sep, ds = ref.rpartition("/")
                if sep:
                    if runner not in (None, named):
                        raise ConfigError(f"task {i}: dataset {ref!r} is on runner {named!r}, "
                                          f"but the task names runner {runner!r}",
                                          "name one runner per task")
                    runner, datasets[role] = named, ds
            for role, ds in datasets.items():
                found = where.get(ds, [])
                if runner is None and len(found) > 1:
                    raise ConfigError(f"dataset {ds!r} exists on several runners "
                                      f"({', '.join(found)})", "name the runner in the task "
                                      "(runner=...)")
                if (runner and runner not in found) or not found:
                    elsewhere = f" (it is on {', '.join(found)})" if found else ""
                    raise NotFoundError(f"no dataset {ds!r} ({role}) on "
                                        f"{'runner ' + repr(runner) if runner else 'any runner'}"
                                        f"{elsewhere}", "list the catalog with client.datasets()")
                runner = runner or found[0]
            cid = task.get("client_name") or f"{runner}/{datasets[primary]}"
            if cid in taken:
                raise ConflictError(f"client {cid!r} already joined session {rec['id']}",
                                    "add each dataset once")
            taken.add(cid)
            clients.append({"client_id": cid, "runner": runner, "datasets": datasets})
        plan = package.load_plan()(
            rec["config"]["model_config"], rec["config"]["data_config"], rec["num_rounds"])
        problems: list[Any] = []
        for c in clients:
            problems += plan.check_datasets({role: infos[(c["runner"], ds)]
                                             for role, ds in c["datasets"].items()}, c["runner"])
        problems = list(dict.fromkeys(problems))
        if problems:
            raise ConfigError("; ".join(p.error for p in problems),
                              "fix the field(s) named, or pick datasets that have those columns",
                              details=[p.as_detail() for p in problems])
        return clients

    def _maybe_run(self, sid: str) -> None:
        rec = self.session(sid)
        if rec["status"] == "pending" and len(rec["clients"]) >= rec["min_num_clients"]:
            self._launch(sid)

    def _launch(self, sid: str) -> None:
        if sid in self._runs:
            return
        task = asyncio.get_running_loop().create_task(self._drive(sid), name=f"session-{sid}")
        self._runs[sid] = task

    async def _drive(self, sid: str) -> None:
        try:
            await SessionRun(self.ctx, sid).run()
        except asyncio.CancelledError:
            raise
        except FedError as exc:
            self._fail(sid, exc.message)
        except Exception as exc:  # a bug must end the session visibly, never leave it 'running'
            log.exception("session %s crashed", sid)
            self._fail(sid, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._runs.pop(sid, None)
            self.ctx.live.pop(sid, None)

    def _fail(self, sid: str, message: str) -> None:
        self.store.set_status(sid, "failed", error=message)
        self.store.log(sid, "error", f"failed: {message}")
        self._emit({"type": "status", "session_id": sid, "status": "failed", "error": message})

    async def cancel(self, sid: str) -> dict[str, Any]:
        rec = self.session(sid)
        if rec["status"] in TERMINAL:
            return rec
        task = self._runs.get(sid)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.store.set_status(sid, "cancelled", error="cancelled by the user")
        self.store.log(sid, "info", "cancelled by the user")
        self._emit({"type": "status", "session_id": sid, "status": "cancelled"})
        return self.session(sid)

    async def wait(self, sid: str, timeout: float | None = None,
                   after_round: int | None = None) -> dict[str, Any]:
        """Return the session once it has ended, or when ``timeout`` seconds have passed.

        With ``after_round``, also return as soon as a round later than that one is committed:
        a live view long-polls this instead of sleeping, so it shows a round the moment it ends.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            rec = self.session(sid)
            if rec["status"] in TERMINAL or (after_round is not None
                                             and rec["current_round"] > after_round):
                return rec
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return rec
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    def metrics(self, sid: str) -> dict[str, Any]:
        """Metrics in the reference SDK's shape: one entry per model, the initial model first."""
        self.session(sid)
        rows = self.store.metrics(sid)
        federated = [r["federated"] for r in rows]
        return {"session_id": sid, "federated_metrics": federated,
                "client_metrics": [r["clients"] for r in rows],
                "latest_global_model_federated_loss": federated[-1].get("loss") if federated else None}

    def rounds(self, sid: str) -> list[dict[str, Any]]:
        self.session(sid)
        return self.store.rounds(sid)

    def logs(self, sid: str, after: int = 0) -> list[dict[str, Any]]:
        self.session(sid)
        return self.store.logs(sid, after)

    def artefact_bytes(self, sid: str) -> tuple[bytes, dict[str, Any]]:
        """The session's one artefact — its model, or its analytics results — as safetensors
        bytes (what crosses to the kernel) plus the JSON metadata the package's model class reads.

        The plan decides what it is and commits it with its rounds (for a trained model: the
        latest, and at the end the best by ``save_best_model``).
        """
        rec = self.session(sid)
        found = self.store.artefact(sid)
        if found is None:
            raise NotFoundError(f"session {sid} has no model or results yet (it is "
                                f"{rec['status']})", "wait for its first round, or for it to end")
        return Path(found["path"]).read_bytes(), found["meta"]

    # the kernel asks for a model or for results; both are views of the one artefact
    model_bytes = results_bytes = artefact_bytes


def _lock_state_dir(folder: Path) -> Any:
    """Hold an exclusive lock on the state folder for this coordinator's lifetime.

    Two coordinators on one folder would both resume and drive the same sessions; the OS drops
    the lock when the process dies, even by SIGKILL, so a crash never leaves it stuck.
    """
    import fcntl
    import os

    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "coordinator.lock", "a+")  # noqa: SIM115 - held until aclose()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise ConflictError(f"the coordinator state folder {folder} is in use by {owner}",
                            "connect to that coordinator (e.g. the Jupyter server's), or pass "
                            "another state_dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


__all__ = ["Coordinator"]
