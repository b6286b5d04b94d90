"""Secure aggregation, coordinator side: one step whose named answer tensors only add up.

``SessionIO.step(..., secure=SecureSum(...))`` runs four exchanges instead of one (see
:mod:`jupyter_fed.wire.secagg`): key agreement, sealed shares relayed from every client to every
other, the package's step (masked by the runner before its result leaves), and the unmask
exchange. The coordinator relays public keys and sealed shares it cannot open, adds the masked
vectors in ``Z / 2^64`` (one or two elements a value), and removes what is left of the masks from the
shares the survivors reveal: the self masks of the clients whose vectors are in the sum, and the
pairwise masks those share with clients that dropped out after sharing. It learns the sum, the
set of survivors and the timing — never a client's values, which exist here only masked and only
in memory.

The next secure step's keys and shares ride on this one's masked step and unmask exchange
(``wire.secagg``): a plan that sums securely every round, or every tree level, pays two
exchanges a step after the first, not four. When they could not all be made (a client dropped, a
runner left them out), the next step agrees them in exchanges of its own.

Every exchange goes through the engine's own dispatch, so retries, timeouts, liveness, task ids
and provenance are those of any step, and a client that fails any of them is dropped from the
session as any failing client is. Up to ``n - threshold`` clients may fail after sharing; when
more do, the masked vectors cannot be opened and the whole secure step starts again, with fresh
keys, on the clients still answering — or fails the session, like any step, when they are fewer
than the round policy requires.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ValidationError

from jupyter_fed.coordinator.dispatch import ClientAnswer, Liveness
from jupyter_fed.errors import SessionFailed, StepFailed, UpdateRejected
from jupyter_fed.packages import Answer, Payload, SecureSum, StepResults
from jupyter_fed.privacy import secagg as sa
from jupyter_fed.wire import secagg as msg

if TYPE_CHECKING:
    from jupyter_fed.coordinator.engine import SessionRun

__all__ = ["EXAMPLES_TOTAL", "SecureStep"]

EXAMPLES_TOTAL = "num_examples"
"""With ``scale_by_examples``: the name of the total example count in ``StepResults.total``."""


class _BelowThreshold(Exception):
    """Too few clients are left to open the masked vectors; these still answer."""

    def __init__(self, alive: list[str], why: str) -> None:
        super().__init__(why)
        self.alive, self.why = alive, why


class _Clock:
    """Seconds spent in each exchange of one attempt, for the session log."""

    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps.append((name, now - self._last))
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.3f} s" for name, seconds in self.laps)


@dataclass
class _Setup:
    """What the keys and shares exchanges agreed: the round id, the roster (everyone who sent
    keys, in mask order), the threshold, the sealed shares, and who sent them."""

    rid: str
    roster: list[dict[str, str]]
    threshold: int
    sent: dict[str, msg.SharesAnswer]
    u2: list[str]


class SecureStep:
    """One secure step of a session (made and run by :meth:`SessionRun.step`)."""

    def __init__(self, run: SessionRun, name: str, payloads: dict[str, Payload], round: int,
                 secure: SecureSum, expect: Mapping[str, np.ndarray] | None, required: int,
                 liveness: Liveness) -> None:
        self.run_, self.name, self.payloads, self.round = run, name, payloads, round
        self.secure, self.expect, self.required, self.liveness = secure, expect, required, liveness
        self.dropped: list[str] = []
        self.clients = {c["client_id"]: c for c in run.ctx.store.clients(run.sid)}
        names = list(secure.tensors)
        if not names or len(set(names)) != len(names) or \
                (secure.scale_by_examples and EXAMPLES_TOTAL in names):
            raise StepFailed(f"step {name}: SecureSum needs distinct tensor names (and none "
                             f"called {EXAMPLES_TOTAL!r} with scale_by_examples)",
                             "this is a bug in the package's plan")
        self.limbs = sa.limbs_for(max(len(payloads), 1), secure.clip, secure.precision)
        if not sa.fits(max(len(payloads), 1), secure.clip, secure.precision):
            raise StepFailed(f"step {name}: a secure sum of {len(payloads)} clients with clip "
                             f"{secure.clip:g} and precision {secure.precision:g} would overflow "
                             "the 95-bit fixed point", "lower clip or raise precision")

    async def run(self) -> StepResults:
        targets = list(self.payloads)
        for attempt in range(len(targets)):
            if len(targets) < 2:
                raise SessionFailed(f"round {self.round}: a secure sum needs at least 2 clients, "
                                    f"{len(targets)} left", "add clients, or run the session "
                                    "without secure aggregation")
            self.run_.check_enough(len(targets), self.required, self.round)
            try:
                return await self._attempt(targets)
            except _BelowThreshold as exc:
                self.run_.log("warning", f"round {self.round}: secure sum of {self.name} could "
                              f"not be opened ({exc.why}); starting it again with fresh keys "
                              f"on the {len(exc.alive)} client(s) still answering "
                              f"(attempt {attempt + 2})")
                targets = exc.alive
        raise SessionFailed(f"round {self.round}: the secure sum of {self.name} kept failing",
                            "check the runners named in the session log")

    # the four exchanges -----------------------------------------------------------------------
    def _round_id(self) -> str:
        run = self.run_
        return f"{run.sid}.a{run.attempt}.r{self.round}.x{run.next_seq(self.round, '#secagg')}"

    async def _setup(self, targets: list[str], clock: _Clock) -> _Setup:
        """Keys and shares among ``targets``, in exchanges of their own."""
        rid = self._round_id()
        base = {"id": rid}
        keys, _ = await self._exchange(msg.KEYS, targets, lambda c: {**base, "client": c},
                                       msg.KeysAnswer)
        clock.lap("keys")
        u1 = [c for c in targets if c in keys]
        self._enough(u1, 2, "public keys")
        t = sa.threshold(len(u1))
        roster = [{"client": c, **keys[c].model_dump()} for c in u1]
        sent, _ = await self._exchange(msg.SHARES, u1, lambda c: {**base, "client": c,
                                                                  "threshold": t,
                                                                  "roster": roster},
                                       msg.SharesAnswer)
        clock.lap("shares")
        u2 = [c for c in u1 if c in sent and set(sent[c].ciphertexts) == set(u1)]
        self._drop_unanswered(u1, u2, "sent malformed shares")
        self._enough(u2, t, "shares")
        return _Setup(rid, roster, t, sent, u2)

    def _prefetched(self, targets: list[str]) -> _Setup | None:
        """The setup the previous secure step made for these very clients, if any (an unused
        one expires at the runners: ``secagg_ttl``)."""
        found = self.run_.secure_prefetch.pop(frozenset(targets), None)
        self.run_.secure_prefetch.clear()
        return found

    async def _attempt(self, targets: list[str]) -> StepResults:
        clock = _Clock()
        setup = self._prefetched(targets)
        if setup is not None:
            clock.lap("keys and shares prefetched")
        else:
            setup = await self._setup(targets, clock)
        rid, roster, t, sent, u2 = setup.rid, setup.roster, setup.threshold, setup.sent, setup.u2
        u1 = [m["client"] for m in roster]
        base = {"id": rid}
        upcoming = self._round_id()  # the next secure step's, agreed beside this one
        masked, new_keys = await self._masked_step(base, u2, sent, upcoming)
        clock.lap(self.name)
        u3 = [c for c in u2 if c in masked]
        self._enough(u3, t, "masked vectors")
        t_next = sa.threshold(len(u3))
        roster_next = [{"client": c, **new_keys[c].model_dump()} for c in u3 if c in new_keys]

        def riding_shares(c: str) -> dict[str, Any]:
            return {"id": upcoming, "client": c, "threshold": t_next, "roster": roster_next}

        riding = riding_shares if len(roster_next) == len(u3) else None
        revealed, new_shares = await self._exchange(
            msg.UNMASK, u3, lambda c: {**base, "client": c, "survivors": u3}, msg.UnmaskAnswer,
            riding=riding, riding_model=msg.SharesAnswer)
        clock.lap("unmask")
        if riding is not None and all(c in new_shares and set(new_shares[c].ciphertexts) ==
                                      set(u3) for c in u3):
            self.run_.secure_prefetch[frozenset(u3)] = _Setup(upcoming, roster_next, t_next,
                                                              new_shares, list(u3))
        good = {c: a for c, a in revealed.items()
                if a.index == u1.index(c) + 1 and set(a.self_shares) == set(u3)
                and set(a.key_shares) == set(u2) - set(u3)}
        self._drop_unanswered(list(revealed), list(good), "revealed malformed shares")
        if len(good) < t:
            raise _BelowThreshold(list(good), f"{len(good)} client(s) revealed shares, "
                                  f"{t} needed")
        total = self._unmask(rid, masked, u3, [c for c in u2 if c not in u3], good, roster, t)
        clock.lap("removing the masks")
        self.run_.log("info", f"round {self.round}: secure sum of {self.name} over {len(u3)} "
                      f"client(s)" + (f", masks of {len(u2) - len(u3)} dropped client(s) removed"
                                      if len(u3) < len(u2) else "") + f" ({clock})")
        answers = {c: Answer(c, masked[c].outputs, {k: v for k, v in masked[c].tensors.items()
                                                    if k not in self.secure.tensors
                                                    and not k.startswith(msg.MASKED_PREFIX)},
                             int(masked[c].outputs.get("num_examples", 0)), masked[c].elapsed)
                   for c in u3}
        return StepResults(answers, list(dict.fromkeys(self.dropped)), total)

    async def _exchange(self, step: str, clients: list[str], params: Any,
                        model: type[BaseModel], riding: Any = None,
                        riding_model: type[BaseModel] | None = None
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run a built-in step; answers parsed with ``model``, failing clients dropped. With
        ``riding`` (client → params), the next step's message rides along (``wire.secagg``);
        its answers, parsed with ``riding_model``, come second (a client without one is only
        left out of them)."""
        run = self.run_
        chosen = [self._client(c) for c in clients]

        def request(c: str) -> dict[str, Any]:
            return {msg.PARAM: params(c), **({msg.NEXT: riding(c)} if riding else {})}

        results = await run.dispatch(step, self.round, chosen, request, lambda c: {},
                                     self.liveness)
        out: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for client, res in zip(chosen, results, strict=True):
            cid = client["client_id"]
            if isinstance(res, ClientAnswer):
                found = self._riding(res, riding_model)
                if found is not None:
                    extra[cid] = found
                try:
                    out[cid] = model.model_validate(
                        {k: v for k, v in res.outputs.items() if k != "num_examples"})
                    continue
                except ValidationError:
                    res = UpdateRejected(f"client {cid} answered {step} with a malformed message")
            run.fail(client, res, self.round)
            self.dropped.append(cid)
        return out, extra

    @staticmethod
    def _riding(res: ClientAnswer, model: type[BaseModel] | None) -> Any:
        """The next step's answer riding on ``res`` (taken out of its outputs), or ``None``."""
        raw = res.outputs.pop(msg.NEXT, None)
        if raw is None or model is None:
            return None
        try:
            return model.model_validate(raw)
        except ValidationError:
            return None

    async def _masked_step(self, base: dict[str, str], u2: list[str],
                           sent: dict[str, msg.SharesAnswer], upcoming: str
                           ) -> tuple[dict[str, ClientAnswer], dict[str, msg.KeysAnswer]]:
        """The package step, masked; and the next step's keys (round ``upcoming``) riding on
        it."""
        run, s = self.run_, self.secure

        def params(c: str) -> dict[str, Any]:
            secagg = {**base, "client": c, "shared": u2, "tensors": list(s.tensors),
                      "ciphertexts": {sender: sent[sender].ciphertexts[c] for sender in u2},
                      "clip": s.clip, "precision": s.precision,
                      "scale_by_examples": s.scale_by_examples, "limbs": self.limbs}
            return {**self.payloads[c].params, msg.PARAM: secagg,
                    msg.NEXT: {"id": upcoming, "client": c}}

        chosen = [self._client(c) for c in u2]
        results = await run.dispatch(self.name, self.round, chosen, params,
                                     lambda c: self.payloads[c].tensors, self.liveness)
        found: dict[str, ClientAnswer] = {}
        new_keys: dict[str, msg.KeysAnswer] = {}
        shapes: dict[str, tuple[int, ...]] = {k: (*np.shape(v), self.limbs) for k, v in
                                              (self.expect or {}).items() if k in s.tensors}
        shapes.update(dict.fromkeys((msg.EXAMPLES, msg.CLIPPED), (self.limbs,)))
        for client, res in zip(chosen, results, strict=True):
            cid = client["client_id"]
            if not isinstance(res, ClientAnswer):
                run.fail(client, res, self.round)
                self.dropped.append(cid)
                continue
            keys = self._riding(res, msg.KeysAnswer)
            try:
                self._check_masked(res, shapes)
                if self.expect is not None:
                    rest = {k: v for k, v in self.expect.items() if k not in s.tensors}
                    plain = {k: v for k, v in res.tensors.items() if k not in s.tensors
                             and not k.startswith(msg.MASKED_PREFIX)}
                    await run.validate(Answer(cid, res.outputs, plain,
                                              int(res.outputs.get("num_examples", 0)), 0.0),
                                       rest, client)
            except UpdateRejected as exc:
                run.reject(client, exc)
                self.dropped.append(cid)
                continue
            found[cid] = res
            if keys is not None:
                new_keys[cid] = keys
        return found, new_keys

    def _check_masked(self, res: ClientAnswer, shapes: dict[str, tuple[int, ...]]) -> None:
        """Masked tensors: ``uint64``, the shapes every client sends alike (or ``expect``'s, with
        a last axis of ``limbs`` words)."""
        cid = res.client["client_id"]
        for name in self._layout():
            value = res.tensors.get(name)
            if not isinstance(value, np.ndarray) or value.dtype != np.uint64:
                raise UpdateRejected(f"update from client {cid!r} rejected: masked tensor "
                                     f"{name!r} is missing or not uint64")
            want = shapes.setdefault(name, value.shape)
            if value.shape != want:
                raise UpdateRejected(f"update from client {cid!r} rejected: masked tensor "
                                     f"{name!r} has shape {value.shape}, expected {want}")

    def _layout(self) -> list[str]:
        """The order in which tensors and counters make up one masked vector."""
        extra = [msg.EXAMPLES] if self.secure.scale_by_examples else []
        return [*self.secure.tensors, *extra, msg.CLIPPED]

    # removing the masks -----------------------------------------------------------------------
    def _unmask(self, rid: str, masked: dict[str, ClientAnswer], survivors: list[str],
                dropped: list[str], revealed: dict[str, msg.UnmaskAnswer],
                roster: list[dict[str, str]], t: int) -> dict[str, np.ndarray]:
        layout = self._layout()
        shapes = [masked[survivors[0]].tensors[n].shape for n in layout]
        total = np.zeros(sum(int(np.prod(sh)) for sh in shapes), dtype=np.uint64)
        for c in survivors:
            total += np.concatenate([masked[c].tensors[n].ravel() for n in layout])
        seeds = sa.combine_all([{a.index: [sa.unb64(a.self_shares[c][0], sa.BLOCK)]
                                 for a in revealed.values()} for c in survivors], t)
        for seed in seeds:
            total -= sa.expand(sa.self_mask_key(seed, rid), len(total))
        order = [m["client"] for m in roster]
        keys = sa.combine_all([{a.index: [sa.unb64(x, sa.BLOCK) for x in a.key_shares[d]]
                                for a in revealed.values()} for d in dropped], t)
        for d, secret in zip(dropped, keys, strict=True):
            if sa.public_of(secret) != sa.unb64(roster[order.index(d)]["s_pk"], 32):
                raise SessionFailed(f"round {self.round}: the shares revealed for {d} do not "
                                    "rebuild its key (a client sent a wrong share)",
                                    "check the runners named in the session log")
            for c in survivors:
                key = sa.agree(secret, sa.unb64(roster[order.index(c)]["s_pk"], 32), "mask", rid)
                if order.index(c) < order.index(d):  # c added this mask, so it is taken off
                    total -= sa.expand(key, len(total))
                else:
                    total += sa.expand(key, len(total))
        out: dict[str, np.ndarray] = {}
        start = 0
        for name, shape in zip(layout, shapes, strict=True):
            size = int(np.prod(shape))
            part = total[start:start + size]
            start += size
            if name == msg.CLIPPED:
                clipped = sa.count_of(part, self.limbs)
                if clipped:
                    self.run_.warn("secure_clipped", f"secure sum of {self.name}: {clipped} "
                                   f"value(s) were clipped to ±{self.secure.clip:g} before "
                                   "masking; the sum is off by their excess")
            elif name == msg.EXAMPLES:
                out[EXAMPLES_TOTAL] = np.array([float(sa.count_of(part, self.limbs))])
            else:
                out[name] = sa.dequantise(part, self.secure.precision, self.limbs
                                          ).reshape(shape[:-1])
        return out

    # bookkeeping ------------------------------------------------------------------------------
    def _client(self, cid: str) -> dict[str, Any]:
        return self.clients[cid]

    def _drop_unanswered(self, asked: list[str], kept: list[str], why: str) -> None:
        for cid in asked:
            if cid not in kept and cid not in self.dropped:
                self.run_.fail(self._client(cid), UpdateRejected(f"client {cid} {why}"),
                               self.round)
                self.dropped.append(cid)

    def _enough(self, alive: list[str], needed: int, what: str) -> None:
        if len(alive) < self.required:
            self.run_.check_enough(len(alive), self.required, self.round)
        if len(alive) < needed:
            raise _BelowThreshold(alive, f"{len(alive)} client(s) sent {what}, {needed} needed")
