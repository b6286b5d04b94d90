"""Coordinator half of gbm: federated histogram gradient boosting, scikit-learn's algorithm.

Round 0 (``sketch``): every runner sketches its predictors; the merged sketches fix the shared
bin edges, the class counts (or target mean) the intercept-only model — model 0.

Round ``r`` grows the trees of iteration ``r`` level by level: each ``grow`` exchange sends the
model so far (edges, baseline, every tree — runners keep no state) and the trees being grown, and
gets back each runner's gradient histograms of the level's open nodes; their sum (the engine's
secure sum with ``secure_aggregation``) picks every node's best split (see ``_grow``). The level-0
exchange also measures model ``r-1`` on the test rows, so each round commits the metrics of one
model; a last ``evaluate`` step measures the final one — ``num_rounds + 1`` entries, the initial
model first, as for every training package.

``max_iter`` iterations at most, capped by the session's ``num_rounds`` (the reference counts
rounds as trees). ``early_stopping`` stops when the federated validation loss (the clients' test
rows, else their training rows) has not improved by ``tol`` in ``n_iter_no_change`` iterations —
scikit-learn's rule; ``save_best_model`` then picks among the models evaluated. Each round
checkpoints the ensemble, so a restarted coordinator resumes after the last completed tree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._health import learning_warnings
from jupyter_fed.packages._hfl import weighted_metrics
from jupyter_fed.packages._io import Artefact, Payload, RoundMetrics, SecureSum, SessionIO
from jupyter_fed.packages._options import best_index
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._schema import Problem, check_columns, label_problems
from jupyter_fed.packages.gbm._grow import Grower
from jupyter_fed.packages.gbm._start import merge_start
from jupyter_fed.packages.gbm._trees import Ensemble
from jupyter_fed.packages.gbm.config import parse

__all__ = ["GBMPlan"]

PRECISION = 1e-6
"""Quantisation step of the secure sum of histograms (its error is below ``n · 5e-7``)."""


class GBMPlan(Plan):
    """A ``HistGradientBoosting`` session (see the module's docstring)."""

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 10) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.cfg, self.data = parse(self.model_config, self.data_config)
        self.n_iter = self.cfg.iterations(num_rounds)
        self.n_classes = 1
        self.history: list[dict[str, float]] = []
        self.max_rows = 1

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        problems: list[Problem] = []
        for info in datasets.values():
            where = f"{runner}/{info['name']}"
            problems += check_columns("data_config.predictors", self.data.predictors, info, where)
            problems += check_columns("data_config.target", [self.data.target], info, where)
            if self.cfg.classification:
                problems += label_problems("data_config.target", self.data.target, info, where,
                                           10**6)
        return problems

    def artefact_meta(self) -> dict[str, Any]:
        return {"model_config": self.model_config, "data_config": self.data_config,
                "n_classes": self.n_classes, "task": self.cfg.ml_task.type,
                "max_depth": self.cfg.params.max_depth}

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {"model_config": self.model_config, "data_config": self.data_config,
                "n_classes": self.n_classes, **extra}

    def _secure(self) -> SecureSum | None:
        if not self.cfg.secure_aggregation:
            return None
        # |gradient| <= 1, hessian <= 1/4 and counts <= rows for the classification losses;
        # regression residuals are not bounded in advance: 1e9 per bin sum.
        clip = float(self.max_rows) + 1.0 if self.cfg.classification else 1e9
        return SecureSum(tensors=("hist",), clip=clip, precision=PRECISION)

    # the flow -------------------------------------------------------------------------------
    async def run(self, io: SessionIO) -> None:
        if io.checkpoint is None:
            ens = await self._start(io)
            start = 1
        else:
            ens = self._restore(io.checkpoint.arrays, io.checkpoint.meta)
            start = io.checkpoint.round + 1
            io.log("info", f"resuming after boosting iteration {io.checkpoint.round}")
        for rnd in range(start, self.n_iter + 1):
            ens = await self._iteration(io, rnd, ens)
            if ens is None:
                return
        await self._final(io, self.n_iter + 1, ens)

    async def _start(self, io: SessionIO) -> Ensemble:
        try:
            found = await io.step("sketch", Payload(self._params()), round=0)
        except SessionFailed as exc:
            if "only allows differentially private steps" in exc.message:
                raise SessionFailed(f"{exc.message} — gbm shares exact sketches and gradient "
                                    "histograms of every row, which such a dataset never "
                                    "releases", exc.hint) from None
            raise
        start = merge_start(self.cfg, len(self.data.predictors), found)
        self.n_classes, self.max_rows = start.n_classes, max(start.rows.values())
        ens = start.ensemble
        await io.commit(0, state=ens.tensors(), meta=self._meta(), info={
            "initial": True, "clients": list(start.rows), "rows": start.rows,
            "bins": [int(n) + 1 for n in ens.n_edges]}, artefact=self._artefact(ens, 0))
        io.log("info", f"bin edges fixed from {len(found)} client(s)' sketches; "
               f"{self.n_iter} boosting iteration(s) of depth {self.cfg.params.max_depth}")
        return ens

    def _meta(self) -> dict[str, Any]:
        return {"history": self.history, "n_classes": self.n_classes, "max_rows": self.max_rows}

    def _restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Ensemble:
        self.history = list(meta.get("history", []))
        self.n_classes, self.max_rows = int(meta["n_classes"]), int(meta.get("max_rows", 1))
        return Ensemble.from_tensors(dict(arrays), self.cfg.params.max_depth)

    def _artefact(self, ens: Ensemble, rnd: int) -> Artefact:
        return Artefact(ens.tensors(), {**self.artefact_meta(), "round": rnd,
                                        "n_iter": ens.n_iter})

    def _grower(self, ens: Ensemble) -> Grower:
        p = self.cfg.params
        return Grower(ens.n_trees_per_iteration, p.max_depth, ens.n_edges + 1,
                      min_samples_leaf=p.min_samples_leaf, l2=p.l2_regularization,
                      learning_rate=p.learning_rate, constant_hessian=not self.cfg.classification)

    async def _iteration(self, io: SessionIO, rnd: int, ens: Ensemble) -> Ensemble | None:
        """Grow iteration ``rnd``'s trees; ``None`` when early stopping ended the session.

        A client dropped below the root is a hole in the histograms the next levels subtract
        from: the iteration's trees are grown again, from the root, by the clients left.
        """
        started = time.perf_counter()
        base = ens.tensors(runner=True)
        sent = sum(v.nbytes for v in base.values())
        per_client: dict[str, dict[str, Any]] | None = None
        federated: dict[str, float] = {}
        received, exchanges, withheld, slowest, dropped = 0, 0, 0, 0.0, []
        grower = self._grower(ens)
        while grower.open.any():
            level, nodes = grower.level, len(grower.open_nodes())
            expect = {"hist": np.zeros((nodes, len(self.data.predictors), grower.bins, 3),
                                       np.float32)}
            found = await io.step("grow", Payload(self._params(level=level, bins=grower.bins),
                                                  {**base, **grower.tensors()}),
                                  round=rnd, expect=expect, secure=self._secure())
            exchanges, slowest = exchanges + 1, slowest + found.slowest
            received += expect["hist"].nbytes * len(found)
            sent += sum(v.nbytes for v in grower.tensors().values())
            dropped += found.dropped
            if found.dropped and level > 0:
                io.log("warning", f"iteration {rnd}: {', '.join(found.dropped)} dropped while "
                       "the trees grew; growing them again from the root without")
                grower = self._grower(ens)
                continue
            if per_client is None:  # the round's one evaluation: model rnd-1
                per_client = {a.client_id: dict(a.outputs.get("metrics") or {}) for a in found}
                federated = weighted_metrics(per_client)
                self.history.append(federated)
                self._warn(io, rnd, {})
                if self._should_stop():
                    await self._stop_early(io, rnd, ens, per_client)
                    return None
            hist = found.total["hist"] if found.total is not None and "hist" in found.total \
                else sum(a.tensors["hist"].astype(np.float64) for a in found)
            skip = {int(i) for a in found for i in a.outputs.get("withheld", [])
                    if isinstance(i, int) and 0 <= i < nodes}
            withheld += len(skip)
            grower.split(hist, skip)
        ens = ens.appended(grower.finish(ens.edges))
        per_client = per_client or {}
        info = {"duration": time.perf_counter() - started, "local_seconds": slowest,
                "clients": list(per_client), "dropped": dropped, "exchanges": exchanges,
                "withheld_nodes": withheld, "bytes_to_each_runner": sent,
                "bytes_from_runners": received}
        await io.commit(rnd, state=ens.tensors(), meta=self._meta(),
                        metrics=RoundMetrics(rnd - 1, federated, per_client),
                        artefact=self._artefact(ens, rnd), info=info)
        io.log("info", f"iteration {rnd}/{self.n_iter}: {exchanges} exchange(s); model "
               f"{rnd - 1} loss {federated.get('loss', math.nan):.5g}")
        return ens

    def _should_stop(self) -> bool:
        """scikit-learn's rule on the federated validation loss: none of the last
        ``n_iter_no_change`` models improved on the one before them by more than ``tol``."""
        p = self.cfg.params
        if not p.early_stopping or len(self.history) <= p.n_iter_no_change:
            return False
        losses = [m.get("loss") for m in self.history]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in losses):
            return False
        reference = float(losses[-p.n_iter_no_change - 1])  # type: ignore[arg-type]
        return not any(float(v) < reference - p.tol  # type: ignore[arg-type]
                       for v in losses[-p.n_iter_no_change:])

    async def _stop_early(self, io: SessionIO, rnd: int, ens: Ensemble,
                          per_client: dict[str, dict[str, Any]]) -> None:
        best = best_index(self.history, self._rule())
        io.log("info", f"early stopping after {ens.n_iter} iteration(s): the validation loss "
               f"has not improved in {self.cfg.params.n_iter_no_change}")
        await io.commit(rnd, metrics=RoundMetrics(rnd - 1, self.history[-1], per_client),
                        artefact=self._artefact(ens.truncated(best), best),
                        info={"final_evaluation": True, "early_stopped": True,
                              "best_model_round": best, "clients": list(per_client)}, done=True)

    def _rule(self) -> tuple[str, str] | None:
        best = self.cfg.save_best_model
        return best.rule if best else None

    async def _final(self, io: SessionIO, rnd: int, ens: Ensemble) -> None:
        found = await io.step("evaluate", Payload(self._params(), ens.tensors(runner=True)),
                              round=rnd)
        per_client = {a.client_id: dict(a.outputs.get("metrics") or {}) for a in found}
        self.history.append(weighted_metrics(per_client))
        best = best_index(self.history, self._rule())
        # One class predicted is judged on the final model only: early trees often predict one.
        self._warn(io, rnd, {a.client_id: a.outputs.get("diagnostics") or {} for a in found})
        await io.commit(rnd, metrics=RoundMetrics(ens.n_iter, self.history[-1], per_client),
                        artefact=self._artefact(ens.truncated(best), best),
                        info={"final_evaluation": True, "best_model_round": best,
                              "clients": list(per_client)}, done=True)
        io.log("info", f"completed; returning the model after {best} iteration(s)")

    def _warn(self, io: SessionIO, rnd: int, diagnostics: Mapping[str, Any]) -> None:
        for kind, message in learning_warnings(self.history, {}, diagnostics, rnd).items():
            io.warn(kind, message)
