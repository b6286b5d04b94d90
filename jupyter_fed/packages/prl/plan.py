"""Coordinator half of prl: relay keys, intersect opaque tokens (or relay PSI), send alignments.

One round, several steps (``num_rounds`` is ignored). What the coordinator holds at any moment:
public keys, sealed keys it cannot open, and either sorted opaque tokens (keyed hash) or blinded
PSI messages — never an id, a key or a row. What it keeps when the session ends: per client and
dataset role the number of records and of linked records, the alignment's digest (a hash of
keyed tokens: opaque) and the counts of missing and duplicate ids. The positions it sends are
forgotten with the step.

A linkage either completes at every party or fails: parties first stage their alignments (one
whose intersection is smaller than its dataset's minimum rows refuses), the coordinator checks
that every party staged the same one (equal digests), and only then do they store it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError, SessionFailed
from jupyter_fed.packages._io import Artefact, Payload, RoundMetrics, SessionIO, StepResults
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._schema import Problem
from jupyter_fed.packages.prl._match import check_tokens, fuzzy_match, intersect
from jupyter_fed.packages.prl.config import PRLData, parse

__all__ = ["PRLPlan"]


class PRLPlan(Plan):
    """A record-linkage session between the clients ``data_config`` names."""

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 1) -> None:
        super().__init__(model_config, data_config, num_rounds)
        if self.model_config:
            raise ConfigError("a prl session takes no model_config",
                              "put id_columns, protocol and normalisation in data_config",
                              details=[{"field": "model_config", "error": "must be empty"}])
        self.data: PRLData = parse(self.data_config)

    # joining -------------------------------------------------------------------------------
    def check_client(self, client: str, datasets: Mapping[str, Mapping[str, Any]], runner: str
                     ) -> list[Problem]:
        ids = self.data.clients.get(client)
        if ids is None:
            return [Problem("data_config.clients", f"client {client!r} is not one of the clients "
                            f"data_config names ({', '.join(self.data.clients)}); join with "
                            "client_name set to one of them")]
        problems = []
        names = [info["name"] for info in datasets.values()]
        if len(set(names)) < len(names):
            problems.append(Problem("datasets", f"client {client!r} brings {names[0]!r} as both "
                                    "train and test: a linkage keeps one alignment per dataset, "
                                    "so link distinct train and test datasets"))
        for info in datasets.values():
            roles = {c["name"]: c.get("role") for c in info.get("columns") or []}
            where = f"{runner}/{info['name']}"
            for column in [*ids.id_columns, *ids.fuzzy_columns]:
                if column not in roles:
                    problems.append(Problem(f"data_config.clients.{client}.id_columns",
                                            f"{column!r} is not a column of {where}"))
                elif roles[column] != "id":
                    problems.append(Problem(f"data_config.clients.{client}.id_columns",
                                            f"{column!r} of {where} is not registered as an id "
                                            "column (ask its custodian for --id-column)"))
        return problems

    # the session -----------------------------------------------------------------------------
    async def _step(self, io: SessionIO, name: str, payloads: Mapping[str, Payload]
                    ) -> StepResults:
        """One step at the clients ``payloads`` names, all of which must answer; the seconds
        each spent in it are kept for the round's bookkeeping (``session.rounds()``)."""
        found = await io.step(name, payloads, round=1, min_answers=len(payloads))
        for a in found:
            self.step_seconds.setdefault(a.client_id, {})[name] = round(a.elapsed, 3)
        return found

    async def run(self, io: SessionIO) -> None:
        started = time.perf_counter()
        self.step_seconds: dict[str, dict[str, float]] = {}
        clients = [c.client_id for c in io.clients]
        if sorted(clients) != sorted(self.data.clients):
            raise SessionFailed(f"the session links {', '.join(sorted(self.data.clients))} but "
                                f"{', '.join(sorted(clients)) or 'no one'} joined",
                                "join one task per client named in data_config, with its "
                                "client_name")
        roles = ["train"] + (["test"] if all("test" in c.datasets for c in io.clients) else [])
        if len(roles) == 1 and any("test" in c.datasets for c in io.clients):
            io.log("info", "test datasets are not linked: not every client brought one")
        self._compare_normalisations(io)
        if self.data.fuzzy is not None:
            io.warn("fuzzy", "fuzzy linkage reveals more than exact linkage: the coordinator sees "
                    "how similar the names of every pair of records in a block are, and keyed "
                    "Bloom filters of names are open to frequency attacks")
        run = self._keyed if self.data.protocol == "keyed_hash" else self._psi
        counts, linked = await run(io, clients, roles)
        per_client: dict[str, dict[str, Any]] = {}
        digests: dict[str, set[str]] = {role: set() for role in roles}
        for cid in clients:
            per_client[cid] = {}
            for role in roles:
                got = linked[cid].get(role) or {}
                n, k = int(got.get("n_records", 0)), int(got.get("n_overlapped_records", -1))
                digests[role].add(str(got.get("digest")))
                per_client[cid][role] = {"n_records": n, "n_overlapped_records": k,
                                         "frac_overlapped": round(k / n, 4) if n else 0.0}
        for role in roles:
            sizes = {per_client[cid][role]["n_overlapped_records"] for cid in clients}
            if len(digests[role]) != 1 or len(sizes) != 1:
                raise SessionFailed(f"the parties staged different {role} alignments; none "
                                    "is stored", "run the linkage again; the runners' versions "
                                    "may differ")
        await self._step(io, "commit", {c: Payload({**self._base(c, roles),
                                                    "protocol": self.data.protocol})
                                        for c in clients})
        meta = {**self.artefact_meta(), "protocol": self.data.protocol, "roles": roles,
                "clients": clients, "client_metrics": per_client, "counts": counts,
                "digests": {role: next(iter(digests[role])) for role in roles},
                "fuzzy": self.data.fuzzy is not None}
        sizes = np.array([per_client[clients[0]][r]["n_overlapped_records"] for r in roles],
                         dtype=np.int64)
        io.log("info", "linked " + ", ".join(f"{int(k):,} {r} records" for r, k in
                                             zip(roles, sizes, strict=True))
               + f" across {len(clients)} parties ({self.data.protocol})")
        await io.commit(1, metrics=RoundMetrics(None, {}, per_client),
                        artefact=Artefact({"n_overlapped_records": sizes}, meta),
                        info={"duration": time.perf_counter() - started, "clients": clients,
                              "step_seconds": self.step_seconds},
                        done=True)

    def _compare_normalisations(self, io: SessionIO) -> None:
        """Warn when parties normalise corresponding id columns differently: ``P01`` and ``p01``
        then never link, which is rarely what was meant."""
        parties = list(self.data.clients.items())
        width = len(parties[0][1].id_columns) + len(parties[0][1].fuzzy_columns)
        for i in range(width):
            steps = {cid: ids.steps([*ids.id_columns, *ids.fuzzy_columns][i])
                     for cid, ids in parties}
            if len({tuple(v) for v in steps.values()}) > 1:
                shown = "; ".join(f"{cid}: {', '.join(v) or 'none'}" for cid, v in steps.items())
                io.warn("normalise", f"the parties normalise id column {i + 1} differently "
                        f"({shown}): ids link only if equal after each party's own steps")
                return

    def _base(self, cid: str, roles: list[str]) -> dict[str, Any]:
        return {"client": cid, "roles": roles,
                "ids": self.data.clients[cid].model_dump(mode="json", exclude={"backend"})}

    async def _keys(self, io: SessionIO, step: str, clients: list[str], roles: list[str]
                    ) -> tuple[dict[str, str], dict[str, int]]:
        """Every party's public key, and its training rows (public: the catalog shows them)."""
        found = await self._step(io, step, {c: Payload(self._base(c, roles)) for c in clients})
        keys = {a.client_id: str(a.outputs.get("public_key", "")) for a in found}
        for cid, key in keys.items():
            if len(key) != 64 or any(ch not in "0123456789abcdef" for ch in key):
                raise SessionFailed(f"client {cid} sent a malformed public key",
                                    "check the client's runner version")
        rows = {a.client_id: int((a.outputs.get("rows") or {}).get("train") or 0) for a in found}
        return keys, rows

    async def _keyed(self, io: SessionIO, clients: list[str], roles: list[str]
                     ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Group key by the leader, tokens from everyone, intersection here, alignments back."""
        public, _ = await self._keys(io, "keys", clients, roles)
        leader = clients[0]
        shared = await self._step(io, "share", {leader: Payload({
            **self._base(leader, roles), "peers": {c: public[c] for c in clients if c != leader}})})
        sealed = dict(shared.answers[leader].outputs.get("sealed") or {})
        if sorted(sealed) != sorted(c for c in clients if c != leader):
            raise SessionFailed(f"client {leader} did not seal the group key for every party", "")
        fuzzy = self.data.fuzzy.model_dump() if self.data.fuzzy is not None else None
        found = await self._step(io, "tokens", {c: Payload({
            **self._base(c, roles), "leader": leader, "leader_public": public[leader],
            "sealed": sealed.get(c), "fuzzy": fuzzy}) for c in clients})
        counts = {a.client_id: a.outputs.get("counts") for a in found}
        positions: dict[str, dict[str, np.ndarray]] = {c: {} for c in clients}
        for role in roles:
            sent = [check_tokens(found.answers[c].tensors.get(role), c, role,
                                 distinct=fuzzy is None) for c in clients]
            if fuzzy is None:
                linked = intersect(sent)
            else:
                blooms = [self._bloom(found, c, role, len(s)) for c, s in zip(clients, sent,
                                                                               strict=True)]
                linked = fuzzy_match(sent, blooms, self.data.fuzzy.threshold,  # type: ignore[union-attr]
                                     self.data.fuzzy.max_pairs)  # type: ignore[union-attr]
            for c, pos in zip(clients, linked, strict=True):
                positions[c][role] = pos
        del found, sent  # the tokens are not kept beyond this point
        done = await self._step(io, "align", {c: Payload({**self._base(c, roles),
                                                          "protocol": "keyed_hash"}, positions[c])
                                              for c in clients})
        return counts, {a.client_id: dict(a.outputs.get("linked") or {}) for a in done}

    def _bloom(self, found: StepResults, client: str, role: str, rows: int) -> np.ndarray:
        bloom = found.answers[client].tensors.get(f"{role}_bloom")
        width = self.data.fuzzy.bits // 8  # type: ignore[union-attr]
        if bloom is None or bloom.dtype != np.uint8 or bloom.shape != (rows, width):
            raise SessionFailed(f"client {client} sent malformed Bloom filters", "")
        return bloom

    async def _psi(self, io: SessionIO, clients: list[str], roles: list[str]
                   ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Two-party ECDH PSI relayed: the larger party serves, the smaller one queries."""
        public, rows = await self._keys(io, "psi_keys", clients, roles)
        # The party with fewer rows queries: the client's work grows with its own rows thrice
        # (request, response, intersection), the server's with its own once (the set-up).
        client, server = sorted(clients, key=lambda c: (rows[c], clients.index(c)))
        threads = {"threads": self.data.psi_threads} if self.data.psi_threads else {}

        def params(me: str, peer: str, **extra: Any) -> dict[str, Any]:
            return {**self._base(me, roles), "peer": peer, "peer_public": public[peer], **threads,
                    **extra}

        prepared = await self._step(io, "psi_prepare", {
            server: Payload(params(server, client, side="server")),
            client: Payload(params(client, server, side="client"))})
        counts = {a.client_id: a.outputs.get("counts") for a in prepared}
        ask = prepared.answers[client].tensors
        served = await self._step(io, "psi_serve", {server: Payload(params(server, client), {
            k: v for k, v in ask.items() if k.endswith(("_request", "_mac"))})})
        setup = prepared.answers[server].tensors
        answer = served.answers[server].tensors
        found = await self._step(io, "psi_intersect", {client: Payload(params(client, server), {
            **{f"{r}_setup": setup[f"{r}_setup"] for r in roles if f"{r}_setup" in setup},
            **{f"{r}_response": answer[f"{r}_response"] for r in roles
               if f"{r}_response" in answer}})})
        sealed = found.answers[client].tensors
        done = await self._step(io, "psi_align", {server: Payload(params(server, client), {
            k: v for k, v in sealed.items() if k.endswith("_sealed")})})
        linked = {client: dict(found.answers[client].outputs.get("linked") or {}),
                  server: dict(done.answers[server].outputs.get("linked") or {})}
        return counts, linked
