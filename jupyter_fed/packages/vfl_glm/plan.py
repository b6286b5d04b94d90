"""Coordinator half of vfl_glm: relay directions, steps and ciphertexts, one round in two steps.

Each round is one step at the label party, then one at every passive party (in parallel):

1. the label party minimises the deviance over its own coefficients and the directions each
   passive party offered (their images ``X_p D_p`` on the linked training rows), then returns
   each passive party the coefficients of its directions and the BFV-encrypted gradient
   ``X_pᵀ s`` of the new fit, computed from that party's encrypted features;
2. each passive party moves its coefficients, decrypts its gradient and offers its next
   directions (and its partial linear predictor on the test rows, for the metrics).

The final model is measured (and explained) in round ``done + 1``, after the last training
round: each party's runner answers one exact evaluation of its rows per training round and one
after the last (the round-``done`` label step already measured its fit on the training rows).

The label party's block is solved exactly every round and each passive block moves by the best
combination of its preconditioned gradient and its last steps, so a few dozen rounds reach the
pooled maximum-likelihood fit (``benchmarks/vfl_glm.py``). The session stops after
``num_rounds`` rounds or once the deviance's relative change falls below ``tol``.

What the coordinator relays, it sees: the images and test partial predictors (real numbers),
the step coefficients, public keys and ciphertexts (which it cannot read). It never sees a
label, a residual, a row of features or a party's coefficients (unless the session releases
them, ``release_coefficients``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._hfl import weighted_metrics
from jupyter_fed.packages._io import Artefact, Payload, RoundMetrics, SessionIO, StepResults
from jupyter_fed.packages._vertical import VerticalPlan
from jupyter_fed.packages.vfl_glm.config import parse, parse_options

__all__ = ["VflGlmPlan"]


class VflGlmPlan(VerticalPlan):
    """A VFL-GLM training (``vfl_mode: train``) or prediction (``predict``) session."""

    package = "vfl_glm"
    parse = staticmethod(parse)
    parse_options = staticmethod(parse_options)

    # the session --------------------------------------------------------------------------------
    async def run(self, io: SessionIO) -> None:
        if io.checkpoint is not None:
            raise SessionFailed("a vfl_glm session cannot resume: the parties' coefficients "
                                "moved on since its last round", "start a new session")
        started = time.perf_counter()
        clients = [c.client_id for c in io.clients]
        if sorted(clients) != sorted(self.data.clients):
            raise SessionFailed(f"the session fits {', '.join(sorted(self.data.clients))} but "
                                f"{', '.join(sorted(clients)) or 'no one'} joined",
                                "join one task per client of data_config, with its client_name")
        self.options = {c.client_id: parse_options(c.client_id, dict(c.options))
                        for c in io.clients}
        self.runners = {c.client_id: c.runner for c in io.clients}
        self.seconds: dict[str, float] = {}
        found = await self._step(io, "start", {c: Payload(self._base(c)) for c in clients}, 0)
        rows = self._agree(found)
        if self.cfg.vfl_mode == "predict":
            await self._predict(io, rows["train"], started)
        else:
            await self._train(io, rows, found, started)

    def _base(self, client: str) -> dict[str, Any]:
        return {"model_config": self.model_config, "data_config": self.data_config,
                "client": client}

    async def _train(self, io: SessionIO, rows: dict[str, int], found: StepResults,
                     started: float) -> None:
        n, label, passive = rows["train"], self.data.label, self.data.passive
        testing = "test" in rows
        if not testing:
            io.warn("no_test", "no party brought a test dataset: the session reports no metrics"
                    " and no influence scores")
        io.log("info", f"{n:,} linked rows; {label} holds the labels; up to {self.num_rounds} "
               "rounds")
        keys = {f"{k}/{p}": found.answers[p].tensors[k] for p in passive
                for k in ("public", "ct", "ct_sizes")}
        history: list[dict[str, float]] = []
        directions: dict[str, int] = {}
        tensors: dict[str, np.ndarray] = keys
        per: dict[str, dict[str, Any]] = {}
        done_round = self.num_rounds
        for r in range(1, self.num_rounds + 1):
            top = (await self._step(io, "label", {label: Payload(
                {**self._base(label), "exchange": r, "keys": r == 1, "directions": directions,
                 "eval": testing and r > 1}, tensors)}, r)).answers[label]
            if testing and r > 1:  # the model after round r - 1
                per = {label: dict(top.outputs.get("metrics") or {})}
                history.append(weighted_metrics(per))
                per = self._with_influence(per, top.outputs)
                await io.commit(r - 1, metrics=RoundMetrics(r - 1, history[-1], per), info={
                    "duration": time.perf_counter() - started, "clients": list(self.runners),
                    "train": top.outputs.get("train", {}), "step_seconds": dict(self.seconds)})
            io.log("info", f"round {r}: deviance / n "
                   f"{(top.outputs.get('train') or {}).get('train_loss', float('nan')):.6g}")
            if r == self.num_rounds or (r >= 3 and top.outputs.get("converged")):
                done_round = r
                break
            answers = (await self._step(io, "passive", {p: Payload(
                {**self._base(p), "exchange": r, "apply": r > 1, "decrypt": True,
                 "score_bits": top.outputs["score_bits"], "test": testing},
                {"step": top.tensors[f"step/{p}"],
                 "grad/ct": top.tensors[f"grad/{p}/ct"],
                 "grad/ct_sizes": top.tensors[f"grad/{p}/ct_sizes"]}) for p in passive}, r)
                ).answers
            directions = {p: int(answers[p].outputs["directions"]) for p in passive}
            tensors = {f"{k}/{p}": answers[p].tensors[k] for p in passive
                       for k in ("images", "test_u") if k in answers[p].tensors}
        last = (await self._step(io, "passive", {p: Payload(
            {**self._base(p), "exchange": done_round, "apply": done_round > 1, "decrypt": False,
             "test": testing, "final": True}, {"step": top.tensors[f"step/{p}"]})
            for p in passive}, done_round)).answers
        tensors = {f"test_u/{p}": last[p].tensors["test_u"] for p in passive
                   if "test_u" in last[p].tensors}
        final = (await self._step(io, "label", {label: Payload(
            {**self._base(label), "exchange": done_round + 1, "directions": {},
             "eval": testing, "final": True}, tensors)}, done_round + 1)).answers[label]
        if testing:
            per = {label: dict(final.outputs.get("metrics") or {})}
            history.append(weighted_metrics(per))
            per = self._with_influence(per, final.outputs)
        arrays: dict[str, np.ndarray] = {}
        if self.cfg.release_coefficients:
            arrays = {f"coef/{label}": final.tensors["coef"],
                      "intercept": final.tensors["intercept"],
                      **{f"coef/{p}": last[p].tensors["coef"] for p in passive},
                      **{f"offset/{p}": last[p].tensors["offset"] for p in passive}}
        importance: dict[str, Any] | None = None
        if self.cfg.feature_importance_score.enable:
            shap = await self._step(io, "importance", {c: Payload(self._base(c))
                                                        for c in self.data.clients},
                                   done_round + 1)
            importance, shap_arrays = self._importance(
                {c: (a.outputs, a.tensors) for c, a in shap.answers.items()},
                ["linear predictor"])
            arrays.update(shap_arrays)
            io.log("info", f"feature importance over {importance['rows']:,} linked rows")
        meta = {**self.artefact_meta(), "label_client": label, "runners": self.runners,
                "rows": n, "history": history, "rounds": done_round,
                "coefficients_released": "intercept" in arrays,
                "predictors": {c: d.predictors for c, d in self.data.clients.items()},
                "prl_session_id": self.cfg.prl_session_id}
        if importance is not None:
            meta["feature_importance"] = importance
        await io.commit(done_round, metrics=RoundMetrics(done_round, history[-1], per)
                        if testing else None, artefact=Artefact(arrays, meta),
                        info={"duration": time.perf_counter() - started, "rounds": done_round,
                              "step_seconds": dict(self.seconds)}, done=True)

    async def _predict(self, io: SessionIO, n: int, started: float) -> None:
        label, passive = self.data.label, self.data.passive
        fwd = await self._step(io, "passive", {p: Payload(self._base(p)) for p in passive}, 1)
        tensors = {f"u/{p}": fwd.answers[p].tensors["u"] for p in passive}
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
