"""Run a package's plan against its own runner steps in this process, for unit tests of the maths.

``LocalIO`` implements the plan-facing :class:`~jupyter_fed.packages._io.SessionIO` by calling
the package's ``local.py`` steps directly on :class:`~jupyter_fed.runner.data.LoadedDataset`s over
real parquet files. It checks answers against ``expect`` as the engine does (names, shapes,
dtypes, finite values) but has no network, retries or store: the integration tests run the same
plans through real runners and the real engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jupyter_fed.packages import get_package
from jupyter_fed.packages._io import (
    Answer,
    Artefact,
    Checkpoint,
    ClientInfo,
    Payload,
    RoundMetrics,
    SecureSum,
    StepResults,
)
from jupyter_fed.packages.base import StepContext
from jupyter_fed.runner.data import LoadedDataset, inspect


def dataset(folder: Path, name: str, frame: pd.DataFrame) -> LoadedDataset:
    """``frame`` as a registered parquet dataset (streamed from the file, as at a runner)."""
    path = folder / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return LoadedDataset(inspect(name, path), None, path)


class LocalIO:
    """The engine as a plan sees it, without the engine: steps run here, commits are recorded."""

    session_id = "local"

    def __init__(self, package: str, clients: Mapping[str, Mapping[str, LoadedDataset]],
                 checkpoint: Checkpoint | None = None, cache_dir: Path | None = None,
                 principal: str = "local-user") -> None:
        self.package = get_package(package)
        self.cache_dir, self.principal = cache_dir, principal
        self.datasets = {cid: dict(roles) for cid, roles in clients.items()}
        self._checkpoint = checkpoint
        self.metrics: list[RoundMetrics] = []
        self.artefact: Artefact | None = None
        self.states: dict[int, Checkpoint] = {}
        self.steps: list[tuple[int, str]] = []
        self.logs: list[str] = []
        self.warnings: dict[str, str] = {}
        self.done = False
        self.secure_steps = 0

    @property
    def clients(self) -> list[ClientInfo]:
        return [ClientInfo(cid, cid.split("/")[0], {r: d.info.name for r, d in roles.items()})
                for cid, roles in self.datasets.items()]

    @property
    def checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    async def step(self, name: str, payloads: Payload | Mapping[str, Payload], *, round: int,
                   clients: Sequence[str] | None = None, expect: Mapping[str, np.ndarray] | None = None,
                   min_answers: int | None = None, secure: SecureSum | None = None,
                   fold: Callable[[Answer], None] | None = None) -> StepResults:
        fn = self.package.load_step(name)
        targets = list(clients or (payloads.keys() if isinstance(payloads, Mapping) else self.datasets))
        self.steps.append((round, name))
        answers = {}
        for cid in targets:
            p = payloads if isinstance(payloads, Payload) else payloads[cid]
            ctx = StepContext(f"{name}.{round}.{cid}", round, cache_dir=self.cache_dir,
                              principal=self.principal, session_id=self.session_id)
            result = fn(ctx, self.datasets[cid], dict(p.params), dict(p.tensors))
            if expect is not None:
                assert sorted(result.tensors) == sorted(expect), (sorted(result.tensors), sorted(expect))
                for k, ref in expect.items():
                    got = result.tensors[k]
                    assert got.shape == ref.shape and got.dtype == ref.dtype, (k, got.shape, ref.shape)
                    assert np.isfinite(got).all(), k
                assert result.num_examples > 0
            answers[cid] = Answer(cid, dict(result.outputs), dict(result.tensors),
                                  int(result.num_examples), 0.0)
            if fold is not None:  # as the engine: in client order, then the tensors let go
                fold(answers[cid])
                answers[cid].tensors = {}
        if secure is None:
            return StepResults(answers)
        # The plain sum the engine's secure sum equals (within its precision): the plan's maths.
        total: dict[str, np.ndarray] = {}
        for a in answers.values():
            scale = float(a.num_examples) if secure.scale_by_examples else 1.0
            for k in secure.tensors:
                total[k] = total.get(k, 0) + np.asarray(a.tensors.pop(k), np.float64) * scale
            if secure.scale_by_examples:
                total["num_examples"] = total.get("num_examples", 0) + np.array([a.num_examples],
                                                                                 np.float64)
        self.secure_steps += 1
        return StepResults(answers, total=total)

    async def commit(self, round: int, *, state: Mapping[str, np.ndarray] | None = None,
                     meta: Mapping[str, Any] | None = None, metrics: RoundMetrics | None = None,
                     artefact: Artefact | None = None, info: Mapping[str, Any] | None = None,
                     done: bool = False) -> None:
        if state is not None:
            self.states[round] = Checkpoint(round, dict(state), dict(meta or {}))
        if metrics is not None:
            self.metrics.append(metrics)
        if artefact is not None:
            self.artefact = artefact
        self.done = self.done or done

    async def load(self, round: int) -> Checkpoint | None:
        return self.states.get(round)

    def log(self, level: str, message: str, client: str | None = None) -> None:
        self.logs.append(f"{level}: {message}")

    def warn(self, kind: str, message: str) -> None:
        self.warnings.setdefault(kind, message)

    def model(self) -> Any:
        """The artefact as the kernel rebuilds it (the package's model class)."""
        assert self.artefact is not None
        return self.package.load_model()(self.artefact.tensors,
                                         {**self.artefact.meta, "package": self.package.name})


def run_plan(package: str, model_config: dict[str, Any], data_config: dict[str, Any],
             clients: Mapping[str, Mapping[str, LoadedDataset]], num_rounds: int = 30,
             checkpoint: Checkpoint | None = None, cache_dir: Path | None = None) -> LocalIO:
    """Create the package's plan as the coordinator does and run it to its end (``cache_dir``:
    where steps keep state between steps, as a runner's home would)."""
    spec = get_package(package)
    plan = spec.load_plan()(model_config, data_config, num_rounds)
    io = LocalIO(package, clients, checkpoint, cache_dir)
    asyncio.run(plan.run(io))
    return io
