"""Coordinator half of EDA intersect mode: 1D releases, then the pairs, relayed and merged.

1. ``describe`` at every party (the intersection's 1D releases); the parties must report the
   same number of aligned rows and the same alignment digest, or the session fails.
2. Each paired column's public description (released bounds or categories) becomes its
   :class:`~._fields.FieldSpec`; a pair with a column that was not released is withheld.
3. Pairs within one party: ``local_pairs`` there. Pairs across two parties: the earlier party
   (in ``clients`` order) ``encrypt``\\ s, the coordinator relays its public key and ciphertexts
   to the other party, which ``evaluate``\\ s and returns ciphertexts, relayed back for the key
   owner to ``decrypt``. The coordinator only ever holds public keys, ciphertexts and the
   released noisy aggregates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._io import Artefact, Payload, SessionIO, StepResults
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._schema import Problem, check_columns
from jupyter_fed.packages.eda_intersect._fields import FieldSpec, quant_bits
from jupyter_fed.packages.eda_intersect.config import pairs_of, parse, parse_data

__all__ = ["IntersectPlan"]

Col = tuple[str, str]


class IntersectPlan(Plan):
    """An EDA session on the intersection a ``prl`` session linked."""

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 1) -> None:
        super().__init__(model_config, data_config, 1)
        self.cfg = parse(self.model_config)
        self.data = parse_data(self.data_config)

    def check_client(self, client: str, datasets: Mapping[str, Mapping[str, Any]], runner: str
                     ) -> list[Problem]:
        if client not in self.data.clients:
            return [Problem("data_config.clients", f"client {client!r} is not one of the "
                            f"clients data_config names ({', '.join(self.data.clients)}); join "
                            "with client_name set to one of them (the record linkage's names)")]
        info = datasets.get("data") or {}
        where = f"{runner}/{info.get('name')}"
        own = self.data.clients[client].columns
        problems = check_columns(f"data_config.clients.{client}.columns",
                                 [c for c in own if isinstance(c, str)], info, where)
        problems += check_columns(f"data_config.paired_columns.{client}",
                                  self.data.paired_columns.get(client, []), info, where)
        return problems

    # ------------------------------------------------------------------------------- run
    async def _step(self, io: SessionIO, name: str, payloads: Mapping[str, Payload]
                    ) -> StepResults:
        found = await io.step(name, payloads, round=1, min_answers=len(payloads))
        for a in found:
            seconds = self.step_seconds.setdefault(a.client_id, {})
            seconds[name] = round(seconds.get(name, 0.0) + a.elapsed, 3)
            for note in a.outputs.get("warnings", []):
                io.log("warning", f"{a.client_id}: {note}", a.client_id)
        return found

    def _base(self, client: str) -> dict[str, Any]:
        return {"client": client, "model_config": self.model_config,
                "data_config": self.data_config}

    async def run(self, io: SessionIO) -> None:
        started = time.perf_counter()
        self.step_seconds: dict[str, dict[str, float]] = {}
        clients = [c.client_id for c in io.clients]
        if sorted(clients) != sorted(self.data.clients):
            raise SessionFailed(f"the session explores {', '.join(self.data.clients)} but "
                                f"{', '.join(sorted(clients)) or 'no one'} joined",
                                "join one task per client named in data_config, with its "
                                "client_name")
        described = await self._step(io, "describe", {c: Payload(self._base(c))
                                                      for c in self.data.clients})
        sizes = {a.outputs.get("num_rows") for a in described}
        digests = {a.outputs.get("digest") for a in described}
        if len(sizes) != 1 or len(digests) != 1:
            raise SessionFailed("the parties read different intersections of record-linkage "
                                f"session {self.data.prl_session_id}",
                                "run the linkage again, then this session")
        n = int(sizes.pop() or 0)
        columns = {a.client_id: a.outputs.get("columns", {}) for a in described}
        specs, withheld = self._specs(columns)
        pairs = pairs_of(self.data)
        q = quant_bits(n)
        released: list[dict[str, Any]] = []
        for x, y in pairs:
            missing = [f"{c}.{col}" for c, col in (x, y) if (c, col) not in specs]
            if missing:
                released.append({"x": {"client": x[0], "column": x[1]},
                                 "y": {"client": y[0], "column": y[1]},
                                 "withheld": f"{', '.join(missing)} was not released: "
                                             + "; ".join(withheld[m] for m in missing)})
        live = [(x, y) for x, y in pairs if x in specs and y in specs]
        common = {"q": q, "total_pairs": max(len(pairs), 1),
                  "epsilon_pair": self.cfg.pair_epsilon / max(len(pairs), 1)}
        released += await self._local(io, live, specs, common)
        released += await self._cross(io, live, specs, common)
        order = {(x, y): i for i, (x, y) in enumerate(pairs)}
        released.sort(key=lambda p: order.get(((p["x"]["client"], p["x"]["column"]),
                                               (p["y"]["client"], p["y"]["column"])), 0))
        results = {"datasets": columns, "pairs": released, "mode": "intersect",
                   "epsilon": self.cfg.epsilon, "pair_epsilon": self.cfg.pair_epsilon,
                   "mechanism": self.cfg.mechanism, "n": n,
                   "prl_session_id": self.data.prl_session_id}
        info = {"duration": time.perf_counter() - started, "clients": clients, "analytics": True,
                "pairs": len(pairs), "step_seconds": self.step_seconds}
        meta = {**self.artefact_meta(), "results": results}
        await io.commit(1, artefact=Artefact({}, meta), info=info, done=True)
        io.log("info", f"described {len(columns)} parties' columns on {n:,} linked rows and "
                       f"{len(pairs)} pair(s)")

    def _specs(self, columns: Mapping[str, Mapping[str, Any]]
               ) -> tuple[dict[Col, FieldSpec], dict[str, str]]:
        """Each released paired column's field spec; why the others were not released."""
        specs: dict[Col, FieldSpec] = {}
        withheld: dict[str, str] = {}
        for client, col in self.data.paired():
            d = (columns.get(client) or {}).get(col) or {}
            if d.get("withheld") or not d:
                withheld[f"{client}.{col}"] = str(d.get("withheld") or "no release")
            elif d.get("kind") == "categorical":
                specs[(client, col)] = FieldSpec(client, col, "categorical",
                                                 values=sorted(float(v) for v in d["values"]))
            else:
                edges = d["edges"]
                specs[(client, col)] = FieldSpec(client, col, "numeric", float(edges[0]),
                                                 float(edges[-1]), self.cfg.bins2d)
        return specs, withheld

    async def _local(self, io: SessionIO, live: list[tuple[Col, Col]], specs: dict[Col, FieldSpec],
                     common: dict[str, Any]) -> list[dict[str, Any]]:
        payloads = {}
        for client in self.data.clients:
            mine = [(x, y) for x, y in live if x[0] == client and y[0] == client]
            if not mine:
                continue
            cols = list(dict.fromkeys(c for pair in mine for c in pair))
            payloads[client] = Payload({
                **self._base(client), **common, "specs": [specs[c].as_dict() for c in cols],
                "pairs": [[cols.index(x), cols.index(y)] for x, y in mine]})
        if not payloads:
            return []
        found = await self._step(io, "local_pairs", payloads)
        return [p for a in found for p in a.outputs.get("pairs", [])]

    async def _cross(self, io: SessionIO, live: list[tuple[Col, Col]],
                     specs: dict[Col, FieldSpec], common: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        names = list(self.data.clients)
        for a in names:
            for b in names[names.index(a) + 1:]:
                mine = [(x, y) for x, y in live if x[0] == a and y[0] == b]
                if mine:
                    out += await self._encrypted(io, a, b, mine, specs, common)
        return out

    async def _encrypted(self, io: SessionIO, owner: str, peer: str, pairs: list[tuple[Col, Col]],
                         specs: dict[Col, FieldSpec], common: dict[str, Any]
                         ) -> list[dict[str, Any]]:
        xs = list(dict.fromkeys(x for x, _ in pairs))
        ys = list(dict.fromkeys(y for _, y in pairs))
        index = [[xs.index(x), ys.index(y)] for x, y in pairs]
        xspec, yspec = [specs[c].as_dict() for c in xs], [specs[c].as_dict() for c in ys]
        io.log("info", f"{owner} × {peer}: {len(pairs)} pair(s) under homomorphic encryption")
        enc = await self._step(io, "encrypt", {owner: Payload({
            **self._base(owner), **common, "peer": peer, "specs": xspec, "pairs": index})})
        sent = enc.answers[owner].tensors
        evaluated = await self._step(io, "evaluate", {peer: Payload({
            **self._base(peer), **common, "peer": owner, "specs": yspec, "peer_specs": xspec,
            "pairs": index}, {k: sent[k] for k in ("public", "ct", "ct_sizes") if k in sent})})
        back = evaluated.answers[peer].tensors
        done = await self._step(io, "decrypt", {owner: Payload({
            **self._base(owner), **common, "peer": peer, "specs": xspec, "peer_specs": yspec,
            "pairs": index}, {k: back[k] for k in ("ct", "ct_sizes") if k in back})})
        return list(done.answers[owner].outputs.get("pairs", []))

    def artefact_meta(self) -> dict[str, Any]:
        return {"package": "eda_intersect", "model_config": self.model_config,
                "data_config": self.data_config}
