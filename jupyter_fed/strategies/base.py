"""The contract every server-side strategy follows.

A strategy turns the global weights of the last committed round and the clients' new weights into
the next global weights. It never sees data, only named arrays and example counts, so it can run in
the coordinator and be checkpointed with the session (``state_dict``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from jupyter_fed.errors import ConfigError

if TYPE_CHECKING:
    from jupyter_fed.strategies._robust import RunningMean

Weights = dict[str, np.ndarray]
"""Named parameter arrays, as they travel in safetensors."""


@dataclass(frozen=True)
class ClientUpdate:
    """One client's contribution to a round.

    Parameters
    ----------
    client_id
        Stable name of the client (``runner/dataset``), used in logs and errors.
    weights
        The client's locally trained parameters (full weights, not deltas).
    num_examples
        Training examples behind the update; the weight of the client in a weighted mean.
    """

    client_id: str
    weights: Weights
    num_examples: int


class Strategy(ABC):
    """Server-side aggregation of client updates into new global weights."""

    name: ClassVar[str]

    @abstractmethod
    def aggregate(self, global_weights: Mapping[str, np.ndarray],
                  updates: Sequence[ClientUpdate]) -> Weights:
        """Return the next global weights; must not modify its inputs."""

    def running(self, global_weights: Mapping[str, np.ndarray], check: bool = True
                ) -> RunningMean | None:
        """An accumulator taking updates one at a time as they arrive (finish it with
        :meth:`aggregate_running`), or None: this strategy needs every update at once."""
        return None

    def aggregate_running(self, global_weights: Mapping[str, np.ndarray],
                          acc: RunningMean) -> Weights:
        """What :meth:`aggregate` returns for the updates folded into ``acc``."""
        raise NotImplementedError(f"strategy {self.name} does not aggregate update by update")

    def state_dict(self) -> Weights:
        """Server-optimiser state (momentum, second moments) to checkpoint with a round."""
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned, after a coordinator restart.

        A stateless strategy accepts only an empty state: a non-empty one was written by another
        strategy, and silently dropping it would resume a different optimisation than was run.
        """
        if state:
            raise ConfigError(f"strategy {self.name} keeps no optimiser state, but the checkpoint has "
                              f"{len(state)} state entries",
                              "resume the session with the strategy that wrote the checkpoint")
