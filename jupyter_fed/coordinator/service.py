"""The coordinator: sessions from creation to their end, over its runner connections and events.

It is a plain asyncio library object. The Jupyter server extension, the headless
``jupyter fed coordinator`` and the SDK's embedded mode all drive this one class; none of them
re-implements session logic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from jupyter_fed.coordinator.connections import Connections
from jupyter_fed.coordinator.engine import Policy, RunContext, SessionRun
from jupyter_fed.coordinator.events import EventHub
from jupyter_fed.coordinator.joining import resolve_clients
from jupyter_fed.coordinator.lock import lock_state_dir
from jupyter_fed.coordinator.store import CoordinatorStore
from jupyter_fed.errors import (
    ConfigError,
    ConflictError,
    FedError,
    NotFoundError,
)
from jupyter_fed.packages import get_package, parse_config
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
        self._lock_file = lock_state_dir(self.state_dir)
        self.store = CoordinatorStore(self.state_dir / "coordinator.db")
        self.artefacts = self.state_dir / "artefacts"
        self.connections = Connections(self.store)
        self.events = EventHub()
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._load_code()
        self.ctx = RunContext(store=self.store, artefacts=self.artefacts,
                              runner=self.connections.runner, emit=self.events.emit,
                              row_counts=self.connections.row_count)

    async def start(self) -> list[str]:
        """Resume what a previous process left running; returns the ids of resumed sessions.

        A session that was running continues from its last committed round (with a new attempt
        number, so runners never confuse its new tasks with the old ones). If one of its runners
        is unreachable it is marked ``interrupted``; ``resume(session_id)`` continues it later.
        """
        resumed = []
        for rec in self.store.sessions():
            if rec["status"] in ("running", "pending") and rec["config"].get("simulation"):
                # its simulated clients lived in the process that ran it
                self.store.set_status(rec["id"], "failed", error="the simulation ended with the "
                                      "process that ran it; simulate again")
                continue
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
        await self.connections.aclose()
        self.store.close()
        self._lock_file.close()  # releases the folder for the next coordinator

    # events (coordinator/events.py) ----------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving every event (round ends, status changes, logs) from now on."""
        return self.events.subscribe()

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.events.unsubscribe(q)

    # runners (coordinator/connections.py) ---------------------------------------------------
    def runner(self, name: str) -> Any:
        return self.connections.runner(name)

    async def add_runner(self, name: str, url: str, token: str,
                         fingerprint: str | None = None) -> dict[str, Any]:
        return await self.connections.add_runner(name, url, token, fingerprint)

    async def add_runners(self, runners: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await self.connections.add_runners(runners)

    async def join_invitation(self, blob: str, password: str, name: str | None = None, *,
                              client: str = "local") -> dict[str, Any]:
        return await self.connections.join_invitation(blob, password, name, client=client)

    async def runner_admin(self, runner: str, method: str, path: str, body: Any = None,
                           params: dict[str, Any] | None = None) -> Any:
        return await self.connections.runner_admin(runner, method, path, body, params)

    async def remove_runner(self, name: str) -> None:
        await self.connections.remove_runner(name)

    async def runners(self) -> list[dict[str, Any]]:
        return await self.connections.runners()

    async def catalog(self) -> dict[str, Any]:
        return await self.connections.catalog()

    def packages(self) -> list[dict[str, Any]]:
        """The packages this coordinator can run: names, roles, notebook surface, an example."""
        from jupyter_fed.packages import describe_packages

        return describe_packages()

    # custom packages (packages/custom.py) ------------------------------------------------------
    def add_code(self, name: str, files: dict[str, str]) -> dict[str, Any]:
        """Keep a builder's own package so sessions can run its plan here (this coordinator is
        the builder's: it runs their plan as it runs their notebook); runners run its steps only
        once a custodian approved them. Returns its ``package`` name and ``digest``."""
        from jupyter_fed.packages.custom import CodeBundle, register_bundle

        bundle = CodeBundle(name, files)
        spec = register_bundle(bundle)
        folder = self.state_dir / "custom"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{bundle.digest}.tmp"
        tmp.write_text(json.dumps(bundle.to_json()))
        tmp.replace(folder / f"{bundle.digest}.json")
        return {"package": spec.name, "name": bundle.name, "digest": bundle.digest,
                "steps": sorted(spec.steps)}

    def _load_code(self) -> None:
        """Register the custom packages kept by earlier runs, so their sessions resume."""
        from jupyter_fed.packages.custom import CodeBundle, register_bundle

        for path in sorted((self.state_dir / "custom").glob("*.json")):
            try:
                register_bundle(CodeBundle.from_json(json.loads(path.read_text())))
            except (OSError, ValueError, FedError) as exc:
                log.warning("custom package %s not loaded: %s", path.name, exc)

    # sessions -------------------------------------------------------------------------------
    def create_session(self, *, name: str, description: str = "", package_name: str,
                       min_num_clients: int, num_rounds: int, model_config: dict[str, Any],
                       data_config: dict[str, Any], policy: dict[str, Any] | None = None,
                       simulation: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate the configuration against the package's plan, then record the session.

        ``simulation`` (set by ``jupyter_fed.simulation`` only) marks a session whose clients are
        simulated: how the data was partitioned, on which engine; it shows in the session's info.
        """
        package = get_package(package_name)
        if not isinstance(num_rounds, int) or not 1 <= num_rounds <= 100_000:
            raise ConfigError("invalid session: num_rounds: must be an integer from 1 to 100000",
                              "fix the field named",
                              details=[{"field": "num_rounds", "error": "out of range"}])
        pol = parse_config(Policy, {"min_num_clients": min_num_clients, **(policy or {})},
                           "").model_dump()
        plan = package.load_plan()(model_config, data_config, num_rounds)  # validates configs
        self._check_references(plan.references())
        sid = secrets.token_hex(5)
        config = {"min_num_clients": min_num_clients, "num_rounds": num_rounds,
                  "model_config": model_config, "data_config": data_config, "policy": pol}
        if simulation:
            config["simulation"] = dict(simulation)
        self.store.create_session(sid, name, description, package.name, config)
        self.store.log(sid, "info", f"created {package.name} session {name!r}")
        return self.session(sid)

    def _check_references(self, refs: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        """Each session a new one builds on exists, completed, of the package it must be."""
        details = []
        for field, (ref, packages) in refs.items():
            rec = self.store.session(ref)
            kinds = " or ".join(packages)
            if rec is None:
                details.append({"field": field, "error": f"no session {ref!r} (a completed "
                                f"{kinds} session is needed)"})
            elif get_package(rec["package"]).name not in packages:
                details.append({"field": field, "error": f"session {ref} is a {rec['package']} "
                                f"session, not {kinds}"})
            elif rec["status"] != "completed":
                details.append({"field": field, "error": f"session {ref} is {rec['status']}, "
                                "not completed"})
        if details:
            raise ConfigError("invalid session: " + "; ".join(f"{d['field']}: {d['error']}"
                                                              for d in details),
                              "pass the id of a completed session (session.id)", details=details)

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
                "warnings": self.store.warnings(sid), "simulation": cfg.get("simulation")}

    def sessions(self) -> list[dict[str, Any]]:
        return [self.session(r["id"]) for r in self.store.sessions()]

    def start_session(self, sid: str) -> dict[str, Any]:
        """Open a created session for clients to join (status 'pending')."""
        rec = self.session(sid)
        if rec["status"] != "created":
            raise ConflictError(f"session {sid} is {rec['status']}, it can only start once", "")
        self.store.set_status(sid, "pending")
        self.store.log(sid, "info", f"waiting for {rec['min_num_clients']} client(s) to join")
        self.events.emit({"type": "status", "session_id": sid, "status": "pending"})
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
            clients = resolve_clients(rec, tasks, await self.connections.catalog(simulated=True))
        except FedError as exc:
            self._fail(sid, f"join refused: {exc.message}")
            raise
        self.store.add_clients(sid, clients)
        for c in clients:
            self.store.log(sid, "info", f"client {c['client_id']} joined", c["client_id"])
        self._maybe_run(sid)
        return self.session(sid)["clients"]

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

    def keep(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` beside the sessions; :meth:`aclose` cancels it and waits while it tidies
        up (a simulation's engine and simulated runner, stopped when its session ends)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._runs[name] = task
        task.add_done_callback(lambda _: self._runs.pop(name, None))

    def _fail(self, sid: str, message: str) -> None:
        self.store.set_status(sid, "failed", error=message)
        self.store.log(sid, "error", f"failed: {message}")
        self.events.emit({"type": "status", "session_id": sid, "status": "failed", "error": message})

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
        self.events.emit({"type": "status", "session_id": sid, "status": "cancelled"})
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
                await asyncio.wait_for(self.events.changed.wait(), left)
            except TimeoutError:
                pass

    def metrics(self, sid: str) -> dict[str, Any]:
        """Metrics in the reference SDK's shape: one entry per model, the initial model first."""
        self.session(sid)
        rows = self.store.metrics(sid)
        whole = next((r for r in rows if r["model_round"] is None), None)
        if whole is not None:  # metrics of the session, not of models (e.g. record linkage)
            return {"session_id": sid,
                    "federated_metrics": [whole["federated"]] if whole["federated"] else [],
                    "client_metrics": whole["clients"]}
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


__all__ = ["Coordinator"]
