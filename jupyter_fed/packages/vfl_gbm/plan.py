"""Coordinator half of vfl_gbm: relay one SecureBoost tree at a time between the parties.

Per tree: the label party's ``grad`` (encrypted gradients, one ciphertext per linked training
row); then per level the passive parties' ``hist`` (encrypted per-bin sums for the level's open
nodes), the label party's ``split`` (best splits; its own rows routed) and, for the passive
parties whose columns won a split, ``route`` (their rows routed, thresholds kept); then the label
party's ``finish`` (leaf values, scores, test metrics and, by default, each party's influence
score, computed from what it already holds), committed as one round. With
``feature_importance_score``, training ends with three more steps (``_explain``).

The coordinator holds the node of every aligned training row (an array of slot numbers it
merges from the parties' routings and sends to the passive parties), the ciphertexts it relays,
the number of bins of each column and each (node, column, bin)'s row count. It never sees a
label, a gradient, a feature value or a threshold. Feature importance shows it the passive
parties' left/right bits of the explained and perturbed rows at their own splits and the raw
scores the label party returns for the perturbed rows. What the artefact holds: the trees' shape
(which party's which column splits each node), gains, leaf values and row counts — no
thresholds, which stay at their parties for prediction sessions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._hfl import weighted_metrics
from jupyter_fed.packages._io import Artefact, Payload, RoundMetrics, SessionIO, StepResults
from jupyter_fed.packages._schema import Problem, label_problems
from jupyter_fed.packages._vertical import VerticalPlan
from jupyter_fed.packages.vfl_gbm.config import parse, parse_options

__all__ = ["VflGbmPlan"]


def _nbytes(tensors: Mapping[str, np.ndarray]) -> int:
    return int(sum(np.asarray(v).nbytes for v in tensors.values()))


class VflGbmPlan(VerticalPlan):
    """A vfl_gbm training (``vfl_mode: train``) or prediction (``predict``) session."""

    package = "vfl_gbm"
    parse = staticmethod(parse)
    parse_options = staticmethod(parse_options)

    def target_problems(self, field: str, target: str, info: Mapping[str, Any], where: str
                        ) -> list[Problem]:
        return label_problems(field, target, info, where, 2) if self.cfg.classification else []

    # the session --------------------------------------------------------------------------------
    async def run(self, io: SessionIO) -> None:
        if io.checkpoint is not None:
            raise SessionFailed("a vfl_gbm session cannot resume: the parties' state moved on "
                                "since its last round", "start a new session")
        self.started = time.perf_counter()
        clients = [c.client_id for c in io.clients]
        if sorted(clients) != sorted(self.data.clients):
            raise SessionFailed(f"the session trains {', '.join(sorted(self.data.clients))} but "
                                f"{', '.join(sorted(clients)) or 'no one'} joined",
                                "join one task per client of data_config, with its client_name")
        self.options = {c.client_id: parse_options(c.client_id, dict(c.options))
                        for c in io.clients}
        self.runners = {c.client_id: c.runner for c in io.clients}
        self.seconds: dict[str, float] = {}
        self.seq = dict.fromkeys(clients, 0)
        self.sent = 0
        found = await self._step(io, "start", {c: Payload(self._base(c)) for c in clients}, 0)
        rows = self._agree(found)
        if self.cfg.vfl_mode == "predict":
            await self._predict(io, rows["train"])
        else:
            n_bins = [b for c in self.data.clients for b in found.answers[c].outputs["n_bins"]]
            await self._train(io, rows, n_bins)

    def _base(self, client: str) -> dict[str, Any]:
        return {"model_config": self.model_config, "data_config": self.data_config,
                "client": client}

    async def _step(self, io: SessionIO, name: str, payloads: Mapping[str, Payload], rnd: int
                    ) -> StepResults:
        for c, p in payloads.items():
            self.sent += _nbytes(p.tensors)
            if name != "start":
                self.seq[c] += 1
                p.params["seq"] = self.seq[c]
        found = await super()._step(io, name, payloads, rnd)
        self.sent += sum(_nbytes(a.tensors) for a in found)
        return found

    async def _train(self, io: SessionIO, rows: dict[str, int], n_bins: list[int]) -> None:
        n, label, passive = rows["train"], self.data.label, self.data.passive
        testing = "test" in rows
        if not testing:
            io.warn("no_test", "no party brought a test dataset: the session reports no metrics"
                    " and no influence scores")
        width = max(n_bins)
        trees = self.cfg.iterations(self.num_rounds)
        io.log("info", f"{n:,} linked rows, {len(n_bins)} columns, {trees} tree(s); {label} "
               "holds the labels and the key")
        history: list[dict[str, float]] = []
        per_tree: list[int] = []
        top = None
        for t in range(trees):
            rnd, before = t + 1, self.sent
            g = (await self._step(io, "grad", {label: Payload(
                {**self._base(label), "tree": t, "n_bins": n_bins})}, rnd)).answers[label]
            node = np.zeros(n, np.int32)
            open_slots, keys, bits = [0], {q: [] for q in passive}, {q: [] for q in passive}
            for level in range(self.cfg.params.max_depth):
                first = {"ct": g.tensors["ct"], "pub_n": g.tensors["pub_n"]} if level == 0 else {}
                h = await self._step(io, "hist", {q: Payload(
                    {**self._base(q), "tree": t, "level": level, "open": open_slots,
                     "bins": width}, {"node": node, **first}) for q in passive}, rnd)
                tensors = {"node": node}
                for q in passive:
                    tensors[f"enc/{q}"] = h.answers[q].tensors["enc"]
                    tensors[f"cnt/{q}"] = h.answers[q].tensors["cnt"]
                withheld = {q: list(h.answers[q].outputs.get("withheld") or []) for q in passive}
                sp = (await self._step(io, "split", {label: Payload(
                    {**self._base(label), "tree": t, "level": level, "withheld": withheld},
                    tensors)}, rnd)
                      ).answers[label]
                node = np.where(sp.tensors["route"] >= 0, sp.tensors["route"], node
                                ).astype(np.int32)
                asked = {q: sp.tensors[f"req/{q}"] for q in passive if f"req/{q}" in sp.tensors}
                if asked:
                    rt = await self._step(io, "route", {q: Payload(
                        {**self._base(q), "tree": t}, {"node": node, "req": r})
                        for q, r in asked.items()}, rnd)
                    for q in asked:
                        a = rt.answers[q]
                        node = np.where(a.tensors["route"] >= 0, a.tensors["route"], node
                                        ).astype(np.int32)
                        keys[q].append(a.tensors["keys"])
                        if "bits" in a.tensors:
                            bits[q].append(a.tensors["bits"])
                open_slots = [int(m) for m in sp.outputs.get("open") or []]
                if not open_slots:
                    break
            done: dict[str, np.ndarray] = {"node": node}
            for q in passive:
                if keys[q] and bits[q]:
                    done[f"keys/{q}"] = np.concatenate(keys[q])
                    done[f"bits/{q}"] = np.concatenate(bits[q], axis=1)
            top = (await self._step(io, "finish", {label: Payload(
                {**self._base(label), "tree": t, "final": t == trees - 1}, done)}, rnd)
                   ).answers[label]
            per_tree.append(self.sent - before)
            per = {label: {**dict(top.outputs.get("metrics") or {}),
                           **dict(top.outputs.get("train") or {})}}
            fed = weighted_metrics({label: dict(top.outputs.get("metrics") or {})}) \
                if testing else {}
            history.append(fed)
            per = self._with_influence(per, top.outputs)
            await io.commit(rnd, metrics=RoundMetrics(rnd, fed, per), info={
                "duration": time.perf_counter() - self.started, "bytes_this_tree": per_tree[-1],
                "step_seconds": dict(self.seconds)}, done=False)
            io.log("info", f"tree {rnd}: " + ", ".join(f"{k} {v:.4f}" for k, v in fed.items()))
        assert top is not None
        meta = {**self.artefact_meta(), "label_client": label, "runners": self.runners,
                "rows": n, "history": history, "bytes_per_tree": per_tree, "n_bins": n_bins,
                "prl_session_id": self.cfg.prl_session_id,
                "columns": {c: list(d.predictors) for c, d in self.data.clients.items()}}
        arrays = {k: v for k, v in top.tensors.items() if k.startswith("trees.") or
                  k == "baseline"}
        if self.cfg.feature_importance_score.enable:
            meta["feature_importance"], shap_arrays = await self._explain(io, trees + 1)
            arrays.update(shap_arrays)
        await io.commit(trees + 1, artefact=Artefact(arrays, meta), info={
            "duration": time.perf_counter() - self.started, "bytes_per_tree": per_tree,
            "step_seconds": dict(self.seconds)}, done=True)

    async def _explain(self, io: SessionIO, rnd: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """SHAP values of every party's columns, in three steps (see ``local_importance``): the
        passive parties' left/right bits of their perturbed rows go to the label party, the raw
        scores for them come back, and each party turns them into its SHAP values."""
        label, passive = self.data.label, self.data.passive
        got = (await self._step(io, "explain_bits", {q: Payload(self._base(q))
                                                      for q in passive}, rnd)).answers
        tensors = {f"{k}/{q}": got[q].tensors[k] for q in passive
                   for k in ("keys", "bits", "perturbed", "owner")}
        top = (await self._step(io, "explain_model", {label: Payload(self._base(label),
                                                                     tensors)}, rnd)
               ).answers[label]
        done = (await self._step(io, "explain_finish", {q: Payload(
            self._base(q), {"out": top.tensors[f"out/{q}"]}) for q in passive}, rnd)).answers
        found = {label: (top.outputs, {k: v for k, v in top.tensors.items() if k == "shap"}),
                 **{q: (done[q].outputs, done[q].tensors) for q in passive}}
        meta, arrays = self._importance(found, self.cfg.explained_outputs)
        io.log("info", f"feature importance over {meta['rows']:,} linked rows")
        return meta, arrays

    async def _predict(self, io: SessionIO, n: int) -> None:
        label, passive = self.data.label, self.data.passive
        got = await self._step(io, "bits", {q: Payload(self._base(q)) for q in passive}, 1)
        tensors: dict[str, np.ndarray] = {}
        for q in passive:
            tensors[f"bits/{q}"] = got.answers[q].tensors["bits"]
            tensors[f"keys/{q}"] = got.answers[q].tensors["keys"]
        params = {**self._base(label), "options": self.options[label].model_dump()}
        out = (await self._step(io, "predict", {label: Payload(params, tensors)}, 1)
               ).answers[label]
        written = dict(out.outputs.get("prediction") or {})
        written["runner"] = self.runners[label]
        written["client"] = label
        meta = {**self.artefact_meta(), "label_client": label, "runners": self.runners,
                "rows": n, "prediction": written,
                "training_session_id": self.cfg.training_session_id}
        io.log("info", f"{label} wrote {written.get('rows', 0):,} predictions to "
               f"{written.get('storage_path')} on runner {written['runner']}")
        await io.commit(1, metrics=RoundMetrics(None, {}, {label: {
            "n_predictions": int(written.get("rows", 0))}}),
            artefact=Artefact({}, meta), info={"duration": time.perf_counter() - self.started,
                                               "step_seconds": dict(self.seconds)}, done=True)
