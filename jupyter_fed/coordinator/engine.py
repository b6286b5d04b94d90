"""Runs one HFL session: rounds dispatched concurrently to runners, validated, aggregated, committed.

The engine owns the round policy every package inherits: a round needs enough clients to answer
before its deadline; clients that fail are dropped and the weights of the rest renormalised; a round
that keeps too few fails the session while the stored model stays at the last committed round.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jupyter_fed.coordinator.dispatch import ClientAnswer, ClientStep, Liveness
from jupyter_fed.errors import FedError, SessionFailed, StepFailed, UpdateRejected
from jupyter_fed.packages import get_package
from jupyter_fed.packages._hfl import HFLPlan
from jupyter_fed.strategies import ClientUpdate, Weights
from jupyter_fed.wire import TaskSpec, TaskStatus, decode, encode

log = logging.getLogger("jupyter_fed.coordinator")

MODEL_PREFIX, STRATEGY_PREFIX = "model/", "strategy/"


class Policy(BaseModel):
    """When a round counts as done; the user-facing knobs of ``create_fl_session``."""

    model_config = ConfigDict(extra="forbid")

    min_num_clients: int = Field(ge=1, description="clients needed to start and in every round")
    round_timeout: float = Field(3600.0, gt=0, description="hard limit on one round, in seconds")
    min_completion_rate: float = Field(0.0, ge=0, le=1, description="share of a round's clients "
                                       "that must answer")
    accept_failures: bool = Field(True, description="continue without failed clients if enough "
                                  "remain")
    heartbeat_timeout: float = Field(30.0, gt=0, description="seconds a runner may go without "
                                     "answering before it is given up on")
    max_retries: int = Field(2, ge=0, le=10, description="retries after a connection failure or "
                             "a runner restart")

    def required(self, active: int) -> int:
        return max(self.min_num_clients, math.ceil(self.min_completion_rate * active))


@dataclass
class RunContext:
    """What the engine needs from the coordinator, kept narrow so the engine is testable alone."""

    store: Any
    artefacts: Path
    runner: Callable[[str], Any]
    emit: Callable[[dict[str, Any]], None]
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    row_counts: Callable[[str, str], Awaitable[int | None]] | None = None


def save_weights(path: Path, model: Weights, strategy_state: Weights, meta: dict[str, str]) -> None:
    """Write a round's model atomically: a crash leaves the old file or the new, never half."""
    arrays = {MODEL_PREFIX + k: v for k, v in model.items()}
    arrays.update({STRATEGY_PREFIX + k: v for k, v in strategy_state.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(encode(arrays, meta))
    os.replace(tmp, path)


def load_weights(path: Path) -> tuple[Weights, Weights]:
    arrays = decode(path.read_bytes())
    model = {k[len(MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)}
    state = {k[len(STRATEGY_PREFIX):]: v for k, v in arrays.items() if k.startswith(STRATEGY_PREFIX)}
    return model, state


class SessionRun:
    """One run (or resumed run) of one session."""

    def __init__(self, ctx: RunContext, sid: str) -> None:
        self.ctx, self.sid = ctx, sid
        rec = ctx.store.session(sid)
        self.rec = rec
        cfg = rec["config"]
        self.policy = Policy(**cfg["policy"])
        plan_cls = get_package(rec["package"]).load_plan()
        self.plan: HFLPlan = plan_cls(cfg["model_config"], cfg["data_config"], cfg["num_rounds"])
        self.attempt = rec["attempt"]
        self._dispatched = 0
        self._reasons: dict[str, str] = {}

    def _log(self, level: str, message: str, client: str | None = None) -> None:
        getattr(log, level)("%s: %s", self.sid, message)
        self.ctx.store.log(self.sid, level, message, client)
        self.ctx.emit({"type": "log", "session_id": self.sid, "level": level, "client": client,
                       "message": message})

    # ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        if getattr(self.plan, "kind", "hfl") == "analytics":
            await self._analytics()
            return
        store, sid = self.ctx.store, self.sid
        rounds = store.rounds(sid)
        if rounds:
            last = rounds[-1]
            weights, state = load_weights(Path(last["model_path"]))
            self.plan.strategy.load_state_dict(state)
            start = last["round"] + 1
            self._log("info", f"resuming after round {last['round']}")
        else:
            weights = self.plan.initial_weights()
            path = self.ctx.artefacts / sid / "round-0.safetensors"
            save_weights(path, weights, self.plan.strategy.state_dict(), {"round": "0"})
            store.commit_round(sid, 0, str(path), {"initial": True}, None)
            start = 1
        store.set_status(sid, "running")
        self.ctx.emit({"type": "status", "session_id": sid, "status": "running"})
        for rnd in range(start, self.plan.num_rounds + 1):
            weights = await self._fit_round(rnd, weights)
        await self._final_evaluation(weights)

    async def _analytics(self) -> None:
        """One compute step at every runner, then one merge; results stored like a model."""
        from jupyter_fed.packages._analytics import Contribution

        self.ctx.store.set_status(self.sid, "running")
        self.ctx.emit({"type": "status", "session_id": self.sid, "status": "running"})
        started = time.perf_counter()
        self.plan.agree(await self._schemas())
        answers, dropped = await self._dispatch(1, self.plan.step, {})
        self._check_enough(len(answers), 1)
        contributions = [Contribution(a.client["client_id"], a.client["datasets"]["data"],
                                      a.outputs, a.tensors) for a in answers]
        merged = self.plan.merge(contributions)
        for cid, reason in merged.rejected.items():
            self._log("warning", f"contribution of {cid} left out: {reason}", cid)
        for a in answers:
            for note in a.outputs.get("warnings", []):
                self._log("warning", f"{a.client['client_id']}: {note}", a.client["client_id"])
        path = self.ctx.artefacts / self.sid / "results.safetensors"
        import json

        save_weights(path, merged.tensors, {}, {"results": json.dumps(merged.results)})
        info = {"duration": time.perf_counter() - started,
                "local_seconds": max((a.elapsed for a in answers), default=0.0),
                "clients": [c.client_id for c in contributions], "dropped": dropped,
                "rejected": merged.rejected, "analytics": True}
        self.ctx.store.commit_round(self.sid, 1, str(path), info, None, status="completed")
        for c in self._active():
            self.ctx.store.set_client(self.sid, c["client_id"], "done")
        self.ctx.emit({"type": "status", "session_id": self.sid, "status": "completed"})
        self._log("info", f"completed with {len(contributions) - len(merged.rejected)} "
                  "contribution(s)")

    async def _schemas(self) -> dict[str, dict[str, Any]]:
        """Each active client's catalog entry of its dataset (what an analytics plan agrees on);
        a runner that cannot be asked now is left out (its step then uses its own schema)."""
        out: dict[str, dict[str, Any]] = {}
        for c in self._active():
            try:
                infos = await self.ctx.runner(c["runner"]).datasets()
            except FedError:
                continue
            name = c["datasets"].get("data")
            found = [i.model_dump(mode="json") for i in infos if i.name == name]
            if found:
                out[c["client_id"]] = found[0]
        return out

    def _active(self) -> list[dict[str, Any]]:
        return [c for c in self.ctx.store.clients(self.sid) if c["status"] in ("joined", "active")]

    async def _fit_round(self, rnd: int, weights: Weights) -> Weights:
        started = time.perf_counter()
        answers, dropped = await self._dispatch(rnd, self.plan.fit_step, weights)
        updates, per_client, seen = [], {}, set()
        for a in answers:
            cid = a.client["client_id"]
            try:
                if a.task_id in seen or cid in per_client:
                    raise UpdateRejected(f"duplicate update {a.task_id} from {cid}, not aggregated")
                seen.add(a.task_id)
                update = ClientUpdate(cid, a.tensors, int(a.outputs.get("num_examples", 0)))
                await self._validate(update, weights, a.client)
            except UpdateRejected as exc:
                self._reject(a.client, exc)
                dropped.append(cid)
                continue
            updates.append(update)
            per_client[cid] = a.outputs.get("metrics", {})
        self._check_enough(len(updates), rnd)
        new_weights = self.plan.aggregate(weights, updates)
        federated = self.plan.federated_metrics(per_client)
        info = {"duration": time.perf_counter() - started,
                "local_seconds": max(a.elapsed for a in answers),
                "clients": [u.client_id for u in updates], "dropped": dropped,
                "num_examples": {u.client_id: u.num_examples for u in updates},
                "train": {a.client["client_id"]: a.outputs.get("train", {}) for a in answers}}
        path = self.ctx.artefacts / self.sid / f"round-{rnd}.safetensors"
        save_weights(path, new_weights, self.plan.strategy.state_dict(), {"round": str(rnd)})
        self.ctx.store.commit_round(self.sid, rnd, str(path), info, (rnd - 1, federated, per_client))
        self.ctx.emit({"type": "round", "session_id": self.sid, "round": rnd,
                       "num_rounds": self.plan.num_rounds, "model_round": rnd - 1,
                       "federated_metrics": federated, "dropped": dropped})
        self._log("info", f"round {rnd}/{self.plan.num_rounds} done with {len(updates)} client(s); "
                  f"model {rnd - 1} loss {federated.get('loss', float('nan')):.4f}")
        return new_weights

    async def _final_evaluation(self, weights: Weights) -> None:
        rnd = self.plan.num_rounds + 1
        answers, _ = await self._dispatch(rnd, self.plan.eval_step, weights)
        per_client = {a.client["client_id"]: a.outputs.get("metrics", {}) for a in answers}
        self._check_enough(len(answers), rnd)
        federated = self.plan.federated_metrics(per_client)
        all_fed = [m["federated"] for m in self.ctx.store.metrics(self.sid)] + [federated]
        best = self.plan.best_round(all_fed)
        info = {"final_evaluation": True, "best_model_round": best,
                "clients": list(per_client)}
        self.ctx.store.commit_round(self.sid, rnd, None, info,
                                    (self.plan.num_rounds, federated, per_client), status="completed")
        for c in self._active():
            self.ctx.store.set_client(self.sid, c["client_id"], "done")
        self.ctx.emit({"type": "round", "session_id": self.sid, "round": rnd,
                       "num_rounds": self.plan.num_rounds, "model_round": self.plan.num_rounds,
                       "federated_metrics": federated, "dropped": []})
        self.ctx.emit({"type": "status", "session_id": self.sid, "status": "completed"})
        self._log("info", f"completed; returning the model of round {best}")

    def _check_enough(self, answered: int, rnd: int) -> None:
        required = self.policy.required(self._dispatched)
        if answered < required:
            why = "; ".join(f"{cid}: {msg}" for cid, msg in self._reasons.items())
            raise SessionFailed(f"round {rnd} failed: {answered} client(s) answered, "
                                f"{required} required" + (f" ({why})" if why else ""),
                                "check the runners named in the session log")

    async def _validate(self, update: ClientUpdate, reference: Weights, client: dict[str, Any]) -> None:
        from jupyter_fed.strategies.validation import validate_update

        max_rows = None
        if self.ctx.row_counts is not None:
            max_rows = await self.ctx.row_counts(client["runner"], client["datasets"]["train"])
        validate_update(update, reference, max_rows)

    def _reject(self, client: dict[str, Any], exc: FedError) -> None:
        self._reasons[client["client_id"]] = exc.message
        self.ctx.store.set_client(self.sid, client["client_id"], "dropped", exc.message)
        self._log("warning", f"client {client['client_id']} dropped: {exc.message}",
                  client["client_id"])

    # ---------------------------------------------------------------------------------------
    async def _dispatch(self, rnd: int, step: str, weights: Weights
                        ) -> tuple[list[ClientAnswer], list[str]]:
        clients = self._active()
        self._dispatched = len(clients)
        payload = encode(weights)
        liveness = Liveness(time.monotonic() + self.policy.round_timeout,
                            self.policy.heartbeat_timeout, self.policy.max_retries)
        results = await asyncio.gather(*(self._one(c, rnd, step, payload, liveness) for c in clients),
                                       return_exceptions=True)
        answers, dropped = [], []
        for client, res in zip(clients, results, strict=True):
            if isinstance(res, ClientAnswer):
                answers.append(res)
                continue
            if isinstance(res, asyncio.CancelledError):
                raise res
            err = res if isinstance(res, FedError) else StepFailed(f"{type(res).__name__}: {res}")
            if not isinstance(res, FedError):
                log.error("client %s failed", client["client_id"], exc_info=res)
            if not self.policy.accept_failures:
                raise SessionFailed(f"round {rnd}: client {client['client_id']} failed: "
                                    f"{err.message}", "accept_failures is off")
            self._reject(client, err)
            dropped.append(client["client_id"])
        return answers, dropped

    async def _one(self, client: dict[str, Any], rnd: int, step: str, payload: bytes,
                   liveness: Liveness) -> ClientAnswer:
        task_id = f"{self.sid}.a{self.attempt}.r{rnd}.{step}.c{client['idx']}"
        params = (self.plan.step_params(client["datasets"]["data"])
                  if getattr(self.plan, "kind", "hfl") == "analytics" else self.plan.step_params())
        spec = TaskSpec(task_id=task_id, session_id=self.sid, round=rnd, package=self.rec["package"],
                        step=step, datasets=client["datasets"], params=params)
        live = self.ctx.live.setdefault(self.sid, {})
        state = live[client["client_id"]] = {"round": rnd, "step": step, "progress": 0.0,
                                             "state": "queued"}

        def progress(status: TaskStatus) -> None:
            state.update(progress=status.progress, state=status.state.value)

        return await ClientStep(self.ctx.runner(client["runner"]), client, spec, payload, liveness,
                                progress, self._log).run()
