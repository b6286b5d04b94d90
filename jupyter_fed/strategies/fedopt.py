"""Server optimisers: the aggregated update is a pseudo-gradient for an optimiser on the server.

Reddi et al. (2021), "Adaptive Federated Optimization": with ``delta`` the aggregated client update
(aggregated weights minus global weights), the server keeps optimiser state across rounds (momentum,
second moments) and moves the global weights by a step computed from it. The state is checkpointed
with each round (``state_dict``) so a coordinator restart resumes bit-for-bit.

State keys are ``"<slot>/<parameter>"`` (e.g. ``"m/dense.weight"``, ``"v/dense.weight"``,
``"momentum/dense.weight"``) holding float64 arrays, plus ``"step"``: the number of rounds taken.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.strategies._params import AdaptiveParams
from jupyter_fed.strategies._robust import AggregationInfo, cast_like
from jupyter_fed.strategies.base import Weights
from jupyter_fed.strategies.fedavg import RobustStrategy

_RESTORE_HINT = ("restore the strategy from a checkpoint written by the same strategy for the same "
                 "model, or start the session without optimiser state")


class ServerOptimizer(RobustStrategy):
    """Base of FedAvgM, FedAdam, FedYogi and FedAdagrad: aggregate, then take an optimiser step.

    Subclasses name their per-parameter state ``slots`` and implement ``_update``.
    """

    slots: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._state: dict[str, np.ndarray] = {}
        self._step = 0

    @abstractmethod
    def _update(self, delta: np.ndarray, state: dict[str, np.ndarray], step: int) -> np.ndarray:
        """Update ``state`` (one array per slot, replaced, never mutated) and return the step."""

    def move(self, global_weights: Mapping[str, np.ndarray], global64: Weights, delta: Weights,
             info: AggregationInfo) -> Weights:
        if self._step:
            self._check_state(global64)
        step = self._step + 1
        new_state: dict[str, np.ndarray] = {}
        new_weights: dict[str, np.ndarray] = {}
        for key, g in global64.items():
            slots = {s: self._state.get(f"{s}/{key}", np.zeros_like(g)) for s in self.slots}
            new_weights[key] = g + self._update(delta[key], slots, step)
            new_state.update({f"{s}/{key}": slots[s] for s in self.slots})
        # Commit only once everything succeeded, so a failed round leaves the state untouched.
        self._state, self._step, self.last_info = new_state, step, info
        return cast_like(new_weights, global_weights)

    def state_dict(self) -> Weights:
        """Copies of the optimiser state, plus ``"step"``; empty before the first round."""
        if not self._step:
            return {}
        state = {k: v.copy() for k, v in self._state.items()}
        state["step"] = np.array(self._step, dtype=np.int64)
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore ``state_dict()`` output; an empty mapping resets to a fresh optimiser.

        Raises
        ------
        ConfigError
            If the keys do not belong to this strategy (another strategy's checkpoint), a
            parameter lacks one of its slots, or ``"step"`` is missing or not a positive integer.
        """
        if not state:
            self._state, self._step = {}, 0
            return
        problems: list[str] = []
        arrays: dict[str, np.ndarray] = {}
        names: dict[str, set[str]] = {}
        for key, value in state.items():
            slot, sep, param = key.partition("/")
            if key == "step":
                continue
            if not sep or slot not in self.slots or not param:
                problems.append(f"unexpected key {key!r}")
                continue
            arrays[key] = np.array(value, dtype=np.float64)
            names.setdefault(param, set()).add(slot)
        for param, have in sorted(names.items()):
            if have != set(self.slots):
                problems.append(f"parameter {param!r} lacks slot(s) "
                                f"{', '.join(sorted(set(self.slots) - have))}")
        raw_step = np.asarray(state.get("step", 0))
        if raw_step.shape != () or not np.issubdtype(raw_step.dtype, np.integer) or raw_step < 1:
            problems.append("'step' must be a positive integer scalar")
        if problems:
            raise ConfigError(f"cannot restore {self.name} optimiser state: " + "; ".join(problems),
                              _RESTORE_HINT, details=[{"field": "strategy_state", "error": p}
                                                      for p in problems])
        self._state, self._step = arrays, int(raw_step)

    def _check_state(self, global64: Mapping[str, np.ndarray]) -> None:
        have, want = {k.partition("/")[2] for k in self._state}, set(global64)
        problems = []
        if want - have:
            problems.append(f"no state for parameter(s) {', '.join(sorted(want - have))}")
        if have - want:
            problems.append(f"state for unknown parameter(s) {', '.join(sorted(have - want))}")
        for key, arr in self._state.items():
            param = key.partition("/")[2]
            if param in want and arr.shape != global64[param].shape:
                problems.append(f"state {key!r} has shape {arr.shape}, "
                                f"parameter has {global64[param].shape}")
        if problems:
            raise ConfigError(f"{self.name} optimiser state does not match the model: "
                              + "; ".join(problems), _RESTORE_HINT)


class AdaptiveOptimizer(ServerOptimizer):
    """FedAdam / FedYogi / FedAdagrad: ``w += eta * m / (sqrt(v) + tau)``.

    ``m = beta_1*m + (1 - beta_1)*delta`` is shared; subclasses define how ``v`` accumulates
    ``delta**2`` (``_second_moment``).
    """

    slots: ClassVar[tuple[str, ...]] = ("m", "v")
    params: AdaptiveParams

    @abstractmethod
    def _second_moment(self, v: np.ndarray, delta_sq: np.ndarray) -> np.ndarray:
        """The next ``v`` from the previous one and the squared pseudo-gradient."""

    def _learning_rate(self, step: int) -> float:
        return self.params.eta

    def _update(self, delta: np.ndarray, state: dict[str, np.ndarray], step: int) -> np.ndarray:
        beta_1 = self.params.beta_1
        state["m"] = beta_1 * state["m"] + (1.0 - beta_1) * delta
        state["v"] = self._second_moment(state["v"], delta * delta)
        return self._learning_rate(step) * state["m"] / (np.sqrt(state["v"]) + self.params.tau)
