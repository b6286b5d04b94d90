"""Coordinator-side base for horizontal-FL plans: rounds of fit, one final evaluation.

Round ``r`` sends the global model of round ``r-1``; each client first evaluates it on its test
rows, then trains it. So the metrics of model ``r-1`` arrive with the updates of round ``r``, and a
final evaluation step measures the last model: ``num_rounds + 1`` metric entries, one per model,
starting with the initial one, for the price of a single extra round trip.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed, UpdateRejected
from jupyter_fed.packages._health import learning_warnings
from jupyter_fed.packages._io import (
    Artefact,
    Checkpoint,
    Payload,
    RoundMetrics,
    SecureSum,
    SessionIO,
)
from jupyter_fed.packages._options import best_index
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._secure import (
    CLIP,
    PRECISION,
    SUMS,
    as_float64,
    cast_back,
    fedavg_sum,
    mean_from_total,
    moments_from_sums,
)
from jupyter_fed.strategies import ClientUpdate, Strategy, Weights


def weighted_metrics(per_client: Mapping[str, Mapping[str, Any]],
                     count_key: str = "test_num_examples", prefix: str = "test_") -> dict[str, float]:
    """Example-weighted mean of every metric the clients report (NaNs skipped, not propagated).

    Loss, accuracy and R² means weighted by test examples are the pooled-test-set values for loss
    and accuracy exactly; AUC is the weighted mean of per-client AUCs.
    """
    keys = sorted({k for m in per_client.values() for k in m if k != count_key})
    out: dict[str, float] = {}
    for key in keys:
        num = den = 0.0
        for m in per_client.values():
            v, n = m.get(key), float(m.get(count_key, 0))
            if isinstance(v, (int, float)) and math.isfinite(v) and n > 0:
                num, den = num + v * n, den + n
        if den > 0:
            out[key.removeprefix(prefix)] = num / den
    return out


MODEL_PREFIX, STRATEGY_PREFIX = "model/", "strategy/"


class HFLPlan(Plan):
    """Rounds of fit and one final evaluation, for any package whose clients train a model.

    Subclasses say what the model is (``initial_weights``, ``step_params``, ``artefact_meta``) and
    may change how updates merge (``aggregate``) or metrics combine (``federated_metrics``); the
    flow below — prepare, rounds, final evaluation, best-model choice, checkpoints, and the
    warnings when a model learns nothing — is the same for all of them.

    Parameters
    ----------
    strategy
        Server-side aggregation (FedAvg family, robust rules); checkpointed with every round.
    save_best
        ``(metric, "min" | "max")`` to hand back the best model by a federated metric, else the
        last one.
    secure
        Secure aggregation: each round's updates (weights × examples) and the prepare step's
        moments reach the plan only as sums over the clients (``SessionIO.step(secure=...)``);
        the strategy then steps on the mean as on one update. Robust rules are refused by the
        package's config before a plan is made.
    """

    fit_step = "fit"
    eval_step = "evaluate"
    prepare_step: str | None = None
    """A step every client runs once before round 1 (e.g. feature moments), or ``None``."""
    prepare_sums: tuple[str, ...] = ("count", "sum", "sumsq")
    """Under secure aggregation: the tensors the prepare step returns as sums (``_secure``)."""

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int, *, strategy: Strategy,
                 save_best: tuple[str, str] | None = None, secure: bool = False) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.strategy = strategy
        self.save_best = save_best
        self.secure = secure
        self._history: list[dict[str, float]] = []

    # hooks ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def step_params(self) -> dict[str, Any]:
        """JSON parameters every step of this session sends (configs, ``num_rounds``, …)."""

    @abc.abstractmethod
    def initial_weights(self) -> Weights:
        """The model before round 1 (drawn here, so runners never choose it)."""

    def prepared(self, weights: Weights, answers: Sequence[tuple[str, dict[str, Any],
                                                               dict[str, np.ndarray]]]) -> Weights:
        """The initial weights after the prepare step: ``answers`` are (client, outputs, arrays)."""
        return weights

    def prepared_total(self, weights: Weights, total: Mapping[str, np.ndarray]) -> Weights:
        """The initial weights from the secure sum of the prepare step's raw sums: the pooled
        moments, handed to :meth:`prepared` as if one client had sent them."""
        n, mean, m2 = moments_from_sums(total, int(np.shape(total["sum"])[0]))
        extra = {k: np.asarray(v) for k, v in total.items() if k not in ("count", "sum", "sumsq")}
        return self.prepared(weights, [("secure-sum", {"count": n}, {"mean": mean, "m2": m2,
                                                                      **extra})])

    def aggregate(self, global_weights: Weights, updates: Sequence[ClientUpdate]) -> Weights:
        return self.strategy.aggregate(global_weights, updates)

    def running(self, global_weights: Weights) -> Any:
        """The strategy's update-by-update mean (unchecked: the engine validates each answer
        against the global weights), or None when its rule needs every update at once."""
        return self.strategy.running(global_weights, check=False)

    def federated_metrics(self, per_client: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
        return weighted_metrics(per_client)

    def best_round(self, federated: Sequence[Mapping[str, float]]) -> int:
        """Index of the model to hand back: the best by ``save_best_model``, else the last."""
        return best_index(federated, self.save_best)

    # the flow ---------------------------------------------------------------------------------
    async def run(self, io: SessionIO) -> None:
        checkpoint = io.checkpoint
        if checkpoint is None:
            weights = await self._start(io)
            start = 1
        else:
            weights = self._restore(checkpoint)
            start = checkpoint.round + 1
            io.log("info", f"resuming after round {checkpoint.round}")
        for rnd in range(start, self.num_rounds + 1):
            weights = await self._fit_round(io, rnd, weights)
        await self._final_evaluation(io, weights)

    async def _start(self, io: SessionIO) -> Weights:
        weights = self.initial_weights()
        if self.prepare_step is not None:
            secure = SecureSum(self.prepare_sums, clip=CLIP, precision=PRECISION) \
                if self.secure else None
            params = {**self.step_params(), SUMS: True} if self.secure else self.step_params()
            found = await io.step(self.prepare_step, Payload(params), round=0, secure=secure)
            try:
                weights = self.prepared_total(weights, found.total) if found.total is not None \
                    else self.prepared(weights, [(a.client_id, a.outputs, a.tensors)
                                                 for a in found])
            except UpdateRejected as exc:
                raise SessionFailed(f"preparing round 1 failed: {exc.message}", exc.hint) from None
            io.log("info", f"{self.prepare_step} of {len(found)} client(s) merged before round 1")
        await io.commit(0, state=self._state(weights), meta={"history": []},
                        artefact=self._artefact(weights, 0), info={"initial": True})
        return weights

    def _state(self, weights: Weights) -> Weights:
        state = {MODEL_PREFIX + k: v for k, v in weights.items()}
        state.update({STRATEGY_PREFIX + k: v for k, v in self.strategy.state_dict().items()})
        return state

    def _restore(self, checkpoint: Checkpoint) -> Weights:
        weights, state = _split(checkpoint.arrays)
        self.strategy.load_state_dict(state)
        self._history = list(checkpoint.meta.get("history", []))
        return weights

    def _artefact(self, weights: Weights, rnd: int) -> Artefact:
        return Artefact(weights, {**self.artefact_meta(), "round": rnd})

    async def _fit_round(self, io: SessionIO, rnd: int, weights: Weights) -> Weights:
        started = time.perf_counter()
        # The mean of the updates is taken as they arrive (running sums, in client order) when
        # the strategy's rule allows it; the engine has validated each against ``weights``.
        running = None if self.secure else self.running(weights)
        found = await io.step(self.fit_step, Payload(self.step_params(), weights), round=rnd,
                              expect=weights, secure=fedavg_sum(weights) if self.secure else None,
                              fold=None if running is None else (
                                  lambda a: running.add(ClientUpdate(a.client_id, a.tensors,
                                                                     a.num_examples))))
        per_client = {a.client_id: a.outputs.get("metrics", {}) for a in found}
        if found.total is not None:  # secure: one update, the mean, is all the plan may see
            mean, examples = mean_from_total(found.total, weights, len(found))
            new_weights = cast_back(self.aggregate(
                as_float64(weights), [ClientUpdate("secure-sum", mean, examples)]), weights)
        elif running is not None:
            new_weights = self.strategy.aggregate_running(weights, running)
        else:
            new_weights = self.aggregate(weights, [ClientUpdate(a.client_id, a.tensors,
                                                                a.num_examples) for a in found])
        federated = self.federated_metrics(per_client)
        self._history.append(federated)
        train = {a.client_id: a.outputs.get("train", {}) for a in found}
        info = {"duration": time.perf_counter() - started, "local_seconds": found.slowest,
                "client_seconds": found.client_seconds,
                "clients": [a.client_id for a in found], "dropped": found.dropped,
                "num_examples": {a.client_id: a.num_examples for a in found}, "train": train,
                "secure_aggregation": self.secure}
        self._check_learning(io, rnd, train, {})
        await io.commit(rnd, state=self._state(new_weights), meta={"history": self._history},
                        metrics=RoundMetrics(rnd - 1, federated, per_client),
                        artefact=self._artefact(new_weights, rnd), info=info)
        io.log("info", f"round {rnd}/{self.num_rounds} done with {len(found)} client(s); "
               f"model {rnd - 1} loss {federated.get('loss', float('nan')):.4f}")
        return new_weights

    async def _final_evaluation(self, io: SessionIO, weights: Weights) -> None:
        rnd = self.num_rounds + 1
        found = await io.step(self.eval_step, Payload(self.step_params(), weights), round=rnd)
        per_client = {a.client_id: a.outputs.get("metrics", {}) for a in found}
        federated = self.federated_metrics(per_client)
        self._history.append(federated)
        best = self.best_round(self._history)
        chosen = weights
        if best != self.num_rounds:
            kept = await io.load(best)
            if kept is not None:
                chosen = _split(kept.arrays)[0]
            else:  # pragma: no cover - every round commits its state
                best = self.num_rounds
        # One class predicted is judged on the final model only: early models often pass through
        # a one-class phase on their way to a good fit.
        self._check_learning(io, rnd, {}, {a.client_id: a.outputs.get("diagnostics", {})
                                           for a in found})
        await io.commit(rnd, metrics=RoundMetrics(self.num_rounds, federated, per_client),
                        artefact=self._artefact(chosen, best),
                        info={"final_evaluation": True, "best_model_round": best,
                              "clients": list(per_client)}, done=True)
        io.log("info", f"completed; returning the model of round {best}")

    def _check_learning(self, io: SessionIO, rnd: int, train: Mapping[str, Any],
                        diagnostics: Mapping[str, Any]) -> None:
        for kind, message in learning_warnings(self._history, train, diagnostics, rnd).items():
            io.warn(kind, message)


def _split(arrays: Mapping[str, np.ndarray]) -> tuple[Weights, Weights]:
    model = {k[len(MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)}
    state = {k[len(STRATEGY_PREFIX):]: v for k, v in arrays.items() if k.startswith(STRATEGY_PREFIX)}
    return model, state
