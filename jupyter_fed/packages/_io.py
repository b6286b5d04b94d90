"""What a plan may ask of the engine: the one narrow interface every session shape is written to.

A plan (``packages/<name>/plan.py``) owns its session's flow, as a Flower strategy owns its loop:
it decides which step goes to which client with what payload, how answers are merged, and when it
is done. The engine behind :class:`SessionIO` keeps every guarantee that is the same for all
packages — the round policy (minimum clients, timeouts, heartbeats, retries, dropouts), update
validation, exactly-once task ids and provenance, atomic checkpoints and resume, events, and the
one artefact channel — so a plan inherits them without writing any of it.

This module lives in ``packages/`` so that plans never import the coordinator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

Arrays = dict[str, np.ndarray]
"""Named arrays: they travel as safetensors, never pickle."""

__all__ = ["Answer", "Arrays", "Artefact", "Checkpoint", "ClientInfo", "Payload", "RoundMetrics",
           "SecureSum", "SessionIO", "StepResults"]


@dataclass(frozen=True)
class ClientInfo:
    """One client of a session: a runner and the datasets it reads, by role."""

    client_id: str
    runner: str
    datasets: Mapping[str, str]
    """Dataset role (``train``, ``test``, ``data``, …) → dataset name on ``runner``."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """What the client's task said beside its datasets (JSON), for packages whose tasks carry
    settings of their own — a vertical session's ``batch_size`` or ``storage_path``. The plan
    checks them (``Plan.check_options``); nothing else reads them."""


@dataclass
class Payload:
    """What one client's step receives: JSON parameters and named arrays."""

    params: dict[str, Any] = field(default_factory=dict)
    tensors: Arrays = field(default_factory=dict)


@dataclass
class Answer:
    """One client's reply to a step, after the engine checked its provenance (and, when the plan
    gave ``expect``, its arrays against the expected names, shapes and dtypes)."""

    client_id: str
    outputs: dict[str, Any]
    tensors: Arrays
    num_examples: int
    elapsed: float
    """Seconds the step took inside the runner's package code."""


@dataclass(frozen=True)
class SecureSum:
    """Ask the engine to sum some of a step's answer tensors under secure aggregation.

    The clients mask those tensors (fixed point, pairwise masks agreed by X25519, seeds
    secret-shared for dropout recovery) before they leave the runner; the coordinator adds the
    masked vectors and removes what is left of the masks, so the plan — and anything it stores or
    logs — gets only the sum over the answering clients (:attr:`StepResults.total`), never one
    client's values. Robust aggregation rules, which need individual updates, cannot use it.

    Tensors the step returns but does not name here travel as usual, in the clear, and the
    answers' JSON outputs too: name every tensor that describes a client's data.

    Parameters
    ----------
    tensors
        Names of the answer tensors to sum (any shapes, the same at every client); they
        disappear from each ``Answer.tensors``.
    clip
        Values are clipped to ``[-clip, clip]`` before quantisation (the sum of n clients stays
        within the field for ``n * clip / precision`` below its size, ``2^95``).
    precision
        The quantisation step: the secure sum equals the plain sum within ``n * precision / 2``.
    scale_by_examples
        Each client multiplies the tensors by its example count before masking and adds the
        count itself to the sum (``total["num_examples"]``): FedAvg's numerator and denominator,
        with no change to the package's step. ``clip`` then bounds the scaled values.

    Values are a 95-bit fixed point (two elements of ``Z / 2^64`` each): ``n * clip /
    precision`` must stay below ``2^95`` (the engine refuses a step where it does not), which
    leaves room for ``clip=1e15`` with ``precision=1e-10`` and a thousand clients. Values beyond
    ``clip`` are clipped; the engine warns with the total number clipped (itself summed
    securely, so no client's count is seen).
    """

    tensors: tuple[str, ...]
    clip: float = 1e6
    precision: float = 1e-6
    scale_by_examples: bool = False


@dataclass
class StepResults:
    """The answers of one step: only clients that answered in time and passed validation."""

    answers: dict[str, Answer]
    dropped: list[str] = field(default_factory=list)
    """Clients dropped during this step (failed, timed out, or sent an invalid answer)."""
    total: Arrays | None = None
    """With ``secure=``: the sum of the secured tensors over the answering clients."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.answers.values())

    def __len__(self) -> int:
        return len(self.answers)

    @property
    def slowest(self) -> float:
        """Seconds of the slowest client's step (0 when none answered)."""
        return max((a.elapsed for a in self.answers.values()), default=0.0)

    @property
    def client_seconds(self) -> float:
        """Seconds of every answering client's step, summed: the critical path when clients
        share one worker (a simulation's local engine), and the work a round asked for."""
        return sum(a.elapsed for a in self.answers.values())


@dataclass
class RoundMetrics:
    """Metrics of one model: which model (0 = initial), the federated values, and each client's.

    ``model_round=None`` commits metrics of the session as a whole rather than of a model (a
    record linkage's overlap counts): ``metrics()`` then reports ``client_metrics`` as
    ``per_client`` itself (``{client: {...}}``, not one entry per model) and
    ``federated_metrics`` as ``[federated]``, or ``[]`` when it is empty — the reference SDK's
    shape for such sessions.
    """

    model_round: int | None
    federated: dict[str, float]
    per_client: dict[str, dict[str, Any]]


@dataclass
class Checkpoint:
    """What a plan committed to resume from: its round, arrays and JSON state."""

    round: int
    arrays: Arrays
    meta: dict[str, Any]


@dataclass
class Artefact:
    """The session's one product — a model or analytics results — as the kernel rebuilds it.

    ``meta`` must be JSON: the kernel passes it, with the arrays, to the package's ``model`` class.
    The engine adds the package name and the round; a plan adds its configuration and anything
    the model class needs.
    """

    tensors: Arrays
    meta: dict[str, Any] = field(default_factory=dict)


class SessionIO(Protocol):
    """The engine as a plan sees it."""

    session_id: str

    @property
    def clients(self) -> list[ClientInfo]:
        """Clients still in the session (dropped ones leave for good), in join order."""
        ...

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The last committed checkpoint when the session resumes after a restart, else ``None``."""
        ...

    async def step(self, name: str, payloads: Payload | Mapping[str, Payload], *, round: int,
                   clients: Sequence[str] | None = None, expect: Arrays | None = None,
                   min_answers: int | None = None, secure: SecureSum | None = None,
                   fold: Callable[[Answer], None] | None = None) -> StepResults:
        """Run step ``name`` of this package at some or all clients and wait for their answers.

        Parameters
        ----------
        name
            A step the package registered (``PackageSpec.steps``).
        payloads
            One payload for every client, or client id → its own payload.
        round
            The round this step belongs to (task ids and provenance carry it; 0 before the first).
        clients
            Client ids to address (default: every client in the session, or the keys of a mapping).
        expect
            Reference arrays: each answer must carry exactly these names, shapes and dtypes, finite
            values, and a positive example count no larger than the registered rows (model updates).
        min_answers
            Answers needed for the step to count (default: the session's round policy).
        secure
            Sum these answer tensors under secure aggregation: the result's ``total`` holds the
            sum, and no client's values of them ever reach the coordinator.
        fold
            Called with each answer (validated against ``expect``) as answers arrive, in client
            order — an answer that overtakes a slower client earlier in the order waits for it, so
            floating-point sums come out the same whatever the arrival order. The answer's
            tensors are then let go (the result keeps its outputs and counts, with empty
            ``tensors``): a plan that aggregates by running sums holds one model, not one per
            client. Not with ``secure``.

        Raises ``SessionFailed`` when fewer clients than needed answer; those that failed are
        dropped from the session (and from :attr:`clients`) with the reason in the log.
        """
        ...

    async def commit(self, round: int, *, state: Arrays | None = None,
                     meta: Mapping[str, Any] | None = None, metrics: RoundMetrics | None = None,
                     artefact: Artefact | None = None, info: Mapping[str, Any] | None = None,
                     done: bool = False) -> None:
        """Record round ``round`` atomically: the plan's state to resume from, the metrics of a
        model, the session's artefact (model or results), bookkeeping ``info``; with ``done`` the
        session completes in the same transaction. Emits the round's event to live views."""
        ...

    async def load(self, round: int) -> Checkpoint | None:
        """The checkpoint committed at ``round`` (e.g. to hand back the best model)."""
        ...

    def log(self, level: str, message: str, client: str | None = None) -> None:
        """A line of the session's log (``info``, ``warning``, ``error``), shown live."""
        ...

    def warn(self, kind: str, message: str) -> None:
        """A session-level warning (once per ``kind``): the log, the session's info, live views."""
        ...
