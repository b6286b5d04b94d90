"""Runs one session: the package's plan drives the flow, the engine keeps every guarantee.

The plan (``packages/<name>/plan.py``) decides which step goes to which client with what payload
and how answers merge; it sees the engine only as :class:`~jupyter_fed.packages._io.SessionIO`.
The engine owns what is the same for every package: the round policy (a step needs enough clients
to answer before its deadline; clients that fail are dropped, and a step that keeps too few fails
the session while the stored state stays at the last committed round), exactly-once task ids and
provenance, validation of model updates, atomic checkpoints and resume, events, and the session's
one artefact. A step a plan marks ``secure=SecureSum(...)`` runs as secure aggregation's four
exchanges (``secure.py``) over the same dispatch, so the plan gets only the sum of those tensors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jupyter_fed.coordinator.dispatch import ClientAnswer, ClientStep, Liveness
from jupyter_fed.coordinator.transfers import Transfers
from jupyter_fed.errors import FedError, SessionFailed, StepFailed, UpdateRejected
from jupyter_fed.packages import (
    Answer,
    Artefact,
    Checkpoint,
    ClientInfo,
    Payload,
    Plan,
    RoundMetrics,
    SecureSum,
    StepResults,
    get_package,
)
from jupyter_fed.wire import SessionStatus, TaskSpec, TaskStatus, decode, encode
from jupyter_fed.wire.secagg import BUILTIN_STEPS
from jupyter_fed.wire.tensors import metadata

log = logging.getLogger("jupyter_fed.coordinator")

ACTIVE = ("joined", "active")
"""Client states of clients still in a session."""


class Policy(BaseModel):
    """When a step counts as done; the user-facing knobs of ``create_fl_session``."""

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
    ready_timeout: float = Field(300.0, ge=0, description="seconds to wait for the session's "
                                 "runners to report ready (warmed up) before its first step; "
                                 "round timeouts count from then")

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
    transfers: Transfers = field(default_factory=Transfers)
    """The coordinator's budget of large model transfers, shared by its sessions."""


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Arrays plus JSON metadata as safetensors, written atomically (old file or new, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(encode(dict(arrays), {"meta": json.dumps(dict(meta))}))
    os.replace(tmp, path)


def read_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    data = path.read_bytes()
    return decode(data), json.loads(metadata(data).get("meta") or "{}")


class SessionRun:
    """One run (or resumed run) of one session; the :class:`SessionIO` its plan is given."""

    def __init__(self, ctx: RunContext, sid: str) -> None:
        self.ctx, self.session_id = ctx, sid
        rec = ctx.store.session(sid)
        self.rec = rec
        cfg = rec["config"]
        self.policy = Policy(**cfg["policy"])
        self.package = get_package(rec["package"])
        self.plan: Plan = self.package.load_plan()(cfg["model_config"], cfg["data_config"],
                                                   cfg["num_rounds"])
        self.attempt = rec["attempt"]
        self._reasons: dict[str, str] = {}
        self._used: dict[tuple[int, str], int] = {}
        self._checkpoint = self._last_checkpoint()
        self.secure_prefetch: dict[frozenset[str], Any] = {}
        """The next secure step's keys and shares, agreed during the last one (``secure.py``)."""

    # SessionIO ------------------------------------------------------------------------------
    @property
    def sid(self) -> str:
        return self.session_id

    @property
    def clients(self) -> list[ClientInfo]:
        return [ClientInfo(c["client_id"], c["runner"], dict(c["datasets"]),
                           dict(c.get("options") or {})) for c in self._active()]

    @property
    def checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    async def step(self, name: str, payloads: Payload | Mapping[str, Payload], *, round: int,
                   clients: Sequence[str] | None = None, expect: Mapping[str, np.ndarray] | None = None,
                   min_answers: int | None = None, secure: SecureSum | None = None,
                   fold: Callable[[Answer], None] | None = None) -> StepResults:
        active = {c["client_id"]: c for c in self._active()}
        if isinstance(payloads, Payload):
            targets = list(clients) if clients is not None else list(active)
            per_client = dict.fromkeys(targets, payloads)
        else:
            per_client = dict(payloads)
            targets = list(clients) if clients is not None else list(per_client)
        unknown = [cid for cid in targets if cid not in active]
        if unknown:
            raise StepFailed(f"step {name} addressed client(s) not in the session: "
                             f"{', '.join(unknown)}", "this is a bug in the package's plan")
        liveness = self.liveness()
        chosen = [active[cid] for cid in targets]
        required = min_answers if min_answers is not None else self.policy.required(len(chosen))
        if secure is not None:
            if fold is not None:
                raise StepFailed(f"step {name}: fold and secure aggregation do not combine",
                                 "this is a bug in the package's plan")
            from jupyter_fed.coordinator.secure import SecureStep

            return await SecureStep(self, name, {cid: per_client[cid] for cid in targets}, round,
                                    secure, expect, required, liveness).run()
        folder = _InOrder(fold)

        async def settle(i: int, res: ClientAnswer | BaseException) -> Answer | BaseException:
            """An answer as it arrives: checked against ``expect``, then folded in order."""
            out: Answer | BaseException = res if not isinstance(res, ClientAnswer) else Answer(
                res.client["client_id"], res.outputs, res.tensors,
                int(res.outputs.get("num_examples", 0)), res.elapsed)
            if isinstance(out, Answer) and expect is not None:
                try:
                    await self.validate(out, expect, res.client)  # type: ignore[union-attr]
                except UpdateRejected as exc:
                    out = _Rejected(exc)
            folder.arrived(i, out if isinstance(out, Answer) else None)
            return out

        results = await self.dispatch(name, round, chosen, lambda c: per_client[c].params,
                                      lambda c: per_client[c].tensors, liveness, settle)
        if folder.error is not None:
            raise folder.error
        answers: dict[str, Answer] = {}
        dropped: list[str] = []
        for client, res in zip(chosen, results, strict=True):
            if isinstance(res, _Rejected):
                self.reject(client, res.error)
            elif not isinstance(res, Answer):
                self.fail(client, res, round)
            else:
                answers[client["client_id"]] = res
                continue
            dropped.append(client["client_id"])
        self.check_enough(len(answers), required, round)
        return StepResults(answers, dropped)

    # what SecureStep shares with step() --------------------------------------------------------
    def liveness(self) -> Liveness:
        """The deadline and retry budget of one step (all exchanges of a secure one share it)."""
        return Liveness(time.monotonic() + self.policy.round_timeout,
                        self.policy.heartbeat_timeout, self.policy.max_retries)

    def next_seq(self, round: int, name: str) -> int:
        """How many times step ``name`` ran in ``round`` before: part of its task ids."""
        seq = self._used.get((round, name), 0)
        self._used[(round, name)] = seq + 1
        return seq

    async def dispatch(self, name: str, round: int, chosen: Sequence[dict[str, Any]],
                       params: Callable[[str], dict[str, Any]],
                       tensors: Callable[[str], Mapping[str, np.ndarray]], liveness: Liveness,
                       settle: Callable[[int, Any], Awaitable[Any]] | None = None,
                       ) -> list[Any]:
        """Run step ``name`` at ``chosen`` clients at once: each answer, or what went wrong —
        passed through ``settle(index, answer)`` as it arrives when given."""
        seq = self.next_seq(round, name)
        payload_of: dict[str, bytes] = {}
        encoded: dict[int, bytes] = {}  # one encoding per distinct payload (often one for all)
        arrays = {c["client_id"]: tensors(c["client_id"]) for c in chosen}
        for cid, a in arrays.items():
            if id(a) not in encoded:
                encoded[id(a)] = encode(dict(a))
            payload_of[cid] = encoded[id(a)]
        del arrays, encoded

        async def one(i: int, c: dict[str, Any]) -> Any:
            try:
                res: Any = await self._one(c, round, name, seq, params(c["client_id"]),
                                           payload_of[c["client_id"]], liveness)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the client's failure, reported in its place
                res = exc
            return res if settle is None else await settle(i, res)

        results = await asyncio.gather(*(one(i, c) for i, c in enumerate(chosen)),
                                       return_exceptions=True)
        for res in results:
            if isinstance(res, asyncio.CancelledError):
                raise res
        return list(results)

    def fail(self, client: dict[str, Any], res: BaseException, round: int) -> None:
        """A client's step failed: drop it (or fail the session when failures are not accepted)."""
        cid = client["client_id"]
        err = res if isinstance(res, FedError) else StepFailed(f"{type(res).__name__}: {res}")
        if not isinstance(res, FedError):
            log.error("client %s failed", cid, exc_info=res)
        if not self.policy.accept_failures:
            raise SessionFailed(f"round {round}: client {cid} failed: {err.message}",
                                "accept_failures is off")
        self.reject(client, err)

    async def commit(self, round: int, *, state: Mapping[str, np.ndarray] | None = None,
                     meta: Mapping[str, Any] | None = None, metrics: RoundMetrics | None = None,
                     artefact: Artefact | None = None, info: Mapping[str, Any] | None = None,
                     done: bool = False) -> None:
        folder = self.ctx.artefacts / self.sid
        state_path = stored = None
        if state is not None:
            state_path = folder / f"round-{round}.safetensors"
            write_arrays(state_path, state, meta or {})
        if artefact is not None:
            meta_out = {**artefact.meta, "package": self.package.name, "session_id": self.sid}
            meta_out.setdefault("round", round)
            path = folder / f"artefact-{round}.safetensors"
            write_arrays(path, artefact.tensors, {})
            stored = (str(path), meta_out)
        numbers = None if metrics is None else (metrics.model_round, metrics.federated,
                                                metrics.per_client)
        self.ctx.store.commit_round(self.sid, round, str(state_path) if state_path else None,
                                    dict(info or {}), numbers,
                                    status=SessionStatus.completed.value if done else None,
                                    artefact=stored)
        if metrics is not None:
            self.ctx.emit({"type": "round", "session_id": self.sid, "round": round,
                           "num_rounds": self.plan.num_rounds, "model_round": metrics.model_round,
                           "federated_metrics": metrics.federated,
                           "dropped": list((info or {}).get("dropped", []))})
        if done:
            self._finish()

    async def load(self, round: int) -> Checkpoint | None:
        row = next((r for r in self.ctx.store.rounds(self.sid) if r["round"] == round), None)
        if row is None or not row["model_path"]:
            return None
        arrays, meta = read_arrays(Path(row["model_path"]))
        return Checkpoint(round, arrays, meta)

    def log(self, level: str, message: str, client: str | None = None) -> None:
        getattr(log, level if level in ("debug", "info", "warning", "error") else "info")(
            "%s: %s", self.sid, message)
        self.ctx.store.log(self.sid, level, message, client)
        self.ctx.emit({"type": "log", "session_id": self.sid, "level": level, "client": client,
                       "message": message})

    def warn(self, kind: str, message: str) -> None:
        if message in self.ctx.store.warnings(self.sid):
            return  # once per session, also across a restart
        self.log("warning", message)
        self.ctx.emit({"type": "warning", "session_id": self.sid, "kind": kind,
                       "message": message})

    # the run ----------------------------------------------------------------------------------
    async def run(self) -> None:
        self.ctx.store.set_status(self.sid, SessionStatus.running.value)
        self.ctx.emit({"type": "status", "session_id": self.sid, "status": "running"})
        try:
            await self.wait_ready()
            await self.plan.run(self)
        finally:
            self.secure_prefetch.clear()  # set-ups nobody will read expire at the runners
        if self.ctx.store.session(self.sid)["status"] != SessionStatus.completed.value:
            self.ctx.store.set_status(self.sid, SessionStatus.completed.value)
            self._finish()

    async def wait_ready(self) -> None:
        """Start when every runner of the session has a warm worker (``Health.ready``), so the
        first round is not many runners importing torch at once on shared cores, and its
        timeout does not count their warm-up. A runner that does not say, or cannot be reached,
        is not waited for (the step itself reports it); after ``ready_timeout`` the session
        starts anyway, with a warning."""
        waiting = sorted({c["runner"] for c in self._active()})
        started = time.monotonic()
        said = False
        while waiting:
            health = await asyncio.gather(*(self.ctx.runner(n).health() for n in waiting),
                                          return_exceptions=True)
            waiting = [n for n, h in zip(waiting, health, strict=True)
                       if isinstance(h, dict) and h.get("ready") is False]
            if not waiting:
                break
            if time.monotonic() - started >= self.policy.ready_timeout:
                self.log("warning", f"runner(s) {', '.join(waiting)} not ready after "
                         f"{self.policy.ready_timeout:g} s; starting anyway")
                return
            if not said:
                self.log("info", f"waiting for {len(waiting)} runner(s) to warm up")
                said = True
            await asyncio.sleep(0.2)
        if said:
            self.log("info", f"runners ready after {time.monotonic() - started:.1f} s")

    def _finish(self) -> None:
        for c in self._active():
            self.ctx.store.set_client(self.sid, c["client_id"], "done")
        self.ctx.emit({"type": "status", "session_id": self.sid, "status": "completed"})

    def _last_checkpoint(self) -> Checkpoint | None:
        rows = [r for r in self.ctx.store.rounds(self.sid) if r["model_path"]]
        if not rows:
            return None
        arrays, meta = read_arrays(Path(rows[-1]["model_path"]))
        return Checkpoint(rows[-1]["round"], arrays, meta)

    def _active(self) -> list[dict[str, Any]]:
        return [c for c in self.ctx.store.clients(self.sid) if c["status"] in ACTIVE]

    def check_enough(self, answered: int, required: int, rnd: int) -> None:
        if answered < required:
            why = "; ".join(f"{cid}: {msg}" for cid, msg in self._reasons.items())
            raise SessionFailed(f"round {rnd} failed: {answered} client(s) answered, "
                                f"{required} required" + (f" ({why})" if why else ""),
                                "check the runners named in the session log")

    async def validate(self, answer: Answer, reference: Mapping[str, np.ndarray],
                        client: dict[str, Any]) -> None:
        from jupyter_fed.strategies import ClientUpdate
        from jupyter_fed.strategies.validation import validate_update

        max_rows = None
        dataset = client["datasets"].get("train") or client["datasets"].get("data")
        if self.ctx.row_counts is not None and dataset:
            max_rows = await self.ctx.row_counts(client["runner"], dataset)
        validate_update(ClientUpdate(answer.client_id, answer.tensors, answer.num_examples),
                        dict(reference), max_rows)

    def reject(self, client: dict[str, Any], exc: FedError) -> None:
        self._reasons[client["client_id"]] = exc.message
        self.ctx.store.set_client(self.sid, client["client_id"], "dropped", exc.message)
        self.log("warning", f"client {client['client_id']} dropped: {exc.message}",
                 client["client_id"])

    async def _one(self, client: dict[str, Any], rnd: int, step: str, seq: int,
                   params: dict[str, Any], payload: bytes, liveness: Liveness) -> ClientAnswer:
        # The same step twice in one round (tree levels, Newton iterations) gets its own id.
        again = f".s{seq}" if seq else ""
        task_id = f"{self.sid}.a{self.attempt}.r{rnd}.{step}{again}.c{client['idx']}"
        spec = TaskSpec(task_id=task_id, session_id=self.sid, round=rnd, package=self.rec["package"],
                        step=step, datasets=client["datasets"], params=params)
        state: dict[str, Any] = {"round": rnd, "step": step, "progress": 0.0, "state": "queued"}
        if step not in BUILTIN_STEPS:  # secure aggregation's plumbing runs beside the real step
            self.ctx.live.setdefault(self.sid, {})[client["client_id"]] = state

        def progress(status: TaskStatus) -> None:
            state.update(progress=status.progress, state=status.state.value)

        return await ClientStep(self.ctx.runner(client["runner"]), client, spec, payload, liveness,
                                progress, self.log, self.ctx.transfers).run()


@dataclass
class _Rejected:
    """An answer that failed validation against ``expect`` (the client is dropped, not failed)."""

    error: UpdateRejected


class _InOrder:
    """Hands answers to a plan's ``fold`` in client order as they arrive, then drops their
    tensors; holds only answers that overtook a slower client earlier in the order."""

    def __init__(self, fold: Callable[[Answer], None] | None) -> None:
        self.fold, self.next = fold, 0
        self.waiting: dict[int, Answer | None] = {}
        self.error: Exception | None = None
        """What the fold raised (a bug or a plan's refusal): the step fails with it."""

    def arrived(self, i: int, answer: Answer | None) -> None:
        """Client ``i`` answered (``None``: failed or rejected, nothing to fold)."""
        if self.fold is None:
            return
        self.waiting[i] = answer
        while self.next in self.waiting:
            ready = self.waiting.pop(self.next)
            self.next += 1
            if ready is not None and self.error is None:
                try:
                    self.fold(ready)
                except Exception as exc:  # re-raised by the step, not lost
                    self.error = exc
                ready.tensors = {}
