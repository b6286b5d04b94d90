"""Coordinator half of splitnn: relay embeddings and gradients between the parties, in exchanges.

Every party holds the same linked people in the same order (``prl``); each epoch visits them in
an order both draw from the seed sent here. One *exchange* carries ``exchange_batches`` batches:

1. every passive party applies the gradients of the previous exchange, batch by batch, and
   embeds the rows of this one (plus, at an epoch's start, every test row);
2. the label party measures the current model on its test rows (at an epoch's start), then
   trains its bottom network and the head batch by batch on this exchange, and returns each
   passive party the gradient of the loss with respect to its embeddings.

So an epoch of ``B`` batches takes ``2 * ceil(B / exchange_batches)`` steps instead of ``3 * B``;
the price is that a passive party's embeddings in one exchange all come from its network as it
was at the exchange's start (up to ``exchange_batches - 1`` batches stale), which the benchmark
measures. The coordinator holds the arrays of one exchange at a time and keeps none of them; it
never sees a label, a row, or a party's network. The artefact holds the head (unless the
session is differentially private) and where each party's network lives.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._hfl import weighted_metrics
from jupyter_fed.packages._io import Artefact, Payload, RoundMetrics, SessionIO
from jupyter_fed.packages._schema import Problem, label_problems
from jupyter_fed.packages._vertical import VerticalPlan
from jupyter_fed.packages.splitnn._batches import num_chunks
from jupyter_fed.packages.splitnn.config import parse, parse_options

__all__ = ["SplitNNPlan"]


class SplitNNPlan(VerticalPlan):
    """A SplitNN training (``vfl_mode: train``) or prediction (``predict``) session."""

    package = "splitnn"
    parse = staticmethod(parse)
    parse_options = staticmethod(parse_options)

    def target_problems(self, field: str, target: str, info: Mapping[str, Any], where: str
                        ) -> list[Problem]:
        if self.cfg.ml_task.type != "classification":
            return []
        return label_problems(field, target, info, where, self.cfg.classes)

    # the session --------------------------------------------------------------------------------
    async def run(self, io: SessionIO) -> None:
        if io.checkpoint is not None:
            raise SessionFailed("a splitnn session cannot resume: the parties' networks moved on "
                                "since its last round", "start a new session")
        started = time.perf_counter()
        clients = [c.client_id for c in io.clients]
        if sorted(clients) != sorted(self.data.clients):
            raise SessionFailed(f"the session trains {', '.join(sorted(self.data.clients))} but "
                                f"{', '.join(sorted(clients)) or 'no one'} joined",
                                "join one task per client of data_config, with its client_name")
        self.options = {c.client_id: parse_options(c.client_id, dict(c.options))
                        for c in io.clients}
        self.runners = {c.client_id: c.runner for c in io.clients}
        sizes = {o.batch_size for o in self.options.values()}
        if len(sizes) > 1:
            raise SessionFailed(f"the parties' tasks ask for different batch sizes "
                                f"({', '.join(map(str, sorted(sizes)))})",
                                "give every vfl task the same batch_size")
        self.batch_size = sizes.pop()
        self.seconds: dict[str, float] = {}
        found = await self._step(io, "start", {c: Payload(self._base(c)) for c in clients}, 0)
        rows = self._agree(found)
        if self.cfg.vfl_mode == "predict":
            await self._predict(io, rows["train"], started)
        else:
            await self._train(io, rows, started)

    def _base(self, client: str) -> dict[str, Any]:
        return {"model_config": self.model_config, "data_config": self.data_config,
                "client": client, "num_rounds": self.num_rounds, "seed": self.cfg.seed,
                "batch_size": self.batch_size, "exchange_batches": self.cfg.exchange_batches}

    async def _train(self, io: SessionIO, rows: dict[str, int], started: float) -> None:
        n, label, passive = rows["train"], self.data.label, self.data.passive
        testing = "test" in rows
        if not testing:
            io.warn("no_test", "no party brought a test dataset: the session reports no metrics"
                    " and no influence scores")
        chunks = num_chunks(n, self.batch_size, self.cfg.exchange_batches)
        plan = [(r, c) for r in range(1, self.num_rounds + 1) for c in range(chunks)] + [None]
        io.log("info", f"{n:,} linked rows, batches of {self.batch_size}, {chunks} exchange(s) "
               f"per epoch; {label} holds the labels")
        history: list[dict[str, float]] = []
        per: dict[str, dict[str, Any]] = {}
        grads: dict[str, np.ndarray] = {}
        prev: list[int] | None = None
        head: dict[str, np.ndarray] = {}
        for exchange, where in enumerate(plan, start=1):
            rnd = where[0] if where else self.num_rounds + 1
            evaluate = testing and (where is None or where[1] == 0)
            new_epoch = where is not None and where[1] == 0
            common = {"exchange": exchange, "new_epoch": new_epoch}
            fwd = await self._step(io, "forward", {p: Payload(
                {**self._base(p), **common, "apply": prev, "forward": list(where) if where else None,
                 "test": evaluate}, {"grad": grads[p]} if prev else {}) for p in passive}, rnd)
            tensors = {f"emb/{p}": fwd.answers[p].tensors["emb"] for p in passive if where}
            if evaluate:
                tensors.update({f"test_emb/{p}": fwd.answers[p].tensors["test_emb"]
                                for p in passive})
            top = (await self._step(io, "head", {label: Payload(
                {**self._base(label), **common, "train": list(where) if where else None,
                 "eval": evaluate, "final": where is None}, tensors)}, rnd)).answers[label]
            grads = {p: top.tensors[f"grad/{p}"] for p in passive} if where else {}
            head = {k: v for k, v in top.tensors.items() if k.startswith("head.")}
            prev = list(where) if where else None
            if evaluate:
                per = {label: dict(top.outputs.get("metrics") or {})}
                history.append(weighted_metrics(per))
                per = self._with_influence(per, top.outputs)
            if evaluate and where is not None:  # model rnd - 1, measured as epoch rnd began
                await io.commit(rnd, metrics=RoundMetrics(rnd - 1, history[-1], per), info={
                    "duration": time.perf_counter() - started, "clients": list(self.runners),
                    "train": top.outputs.get("train", {}), "step_seconds": dict(self.seconds)})
                io.log("info", f"epoch {rnd}: model {rnd - 1} loss "
                       f"{history[-1].get('loss', float('nan')):.4f}")
        meta = {**self.artefact_meta(), "label_client": label, "runners": self.runners,
                "rows": n, "history": history, "head_released": bool(head),
                "prl_session_id": self.cfg.prl_session_id}
        if self.cfg.feature_importance_score.enable:
            meta["feature_importance"], shap_arrays = await self._explain(io, self.num_rounds + 1)
            head = {**head, **shap_arrays}
        final = RoundMetrics(self.num_rounds, history[-1], per) if testing else None
        await io.commit(self.num_rounds + 1, metrics=final, artefact=Artefact(head, meta),
                        info={"duration": time.perf_counter() - started,
                              "exchanges": len(plan), "step_seconds": dict(self.seconds)},
                        done=True)

    async def _explain(self, io: SessionIO, rnd: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """SHAP values of every party's columns, in three steps (see ``local_importance``): the
        passive parties' perturbed embeddings go to the label party, the head's outputs for them
        come back, and each party turns them into its SHAP values."""
        label, passive = self.data.label, self.data.passive
        emb = (await self._step(io, "explain_embed", {p: Payload(self._base(p))
                                                       for p in passive}, rnd)).answers
        tensors = {f"{k}/{p}": emb[p].tensors[k] for p in passive
                   for k in ("emb", "perturbed", "owner")}
        top = (await self._step(io, "explain_head", {label: Payload(self._base(label), tensors)},
                                rnd)).answers[label]
        done = (await self._step(io, "explain_finish", {p: Payload(
            self._base(p), {"out": top.tensors[f"out/{p}"]}) for p in passive}, rnd)).answers
        found = {label: (top.outputs, {k: v for k, v in top.tensors.items() if k == "shap"}),
                 **{p: (done[p].outputs, done[p].tensors) for p in passive}}
        meta, arrays = self._importance(found, self.cfg.explained_outputs)
        io.log("info", f"feature importance over {meta['rows']:,} linked rows")
        return meta, arrays

    async def _predict(self, io: SessionIO, n: int, started: float) -> None:
        label, passive = self.data.label, self.data.passive
        fwd = await self._step(io, "forward", {p: Payload(self._base(p)) for p in passive}, 1)
        tensors = {f"emb/{p}": fwd.answers[p].tensors["emb"] for p in passive}
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
            artefact=Artefact({}, meta), info={"duration": time.perf_counter() - started,
                                               "step_seconds": dict(self.seconds)}, done=True)
