"""A package that exists only in the test suite, found through an entry point like a third-party one.

``relay`` computes a pooled mean and variance in rounds of **two steps with per-client payloads**:
``mask`` sends each client its own offset (offsets cancel across clients) and token, and gets back
its masked sum and count; ``spread`` sends everyone the pooled mean and gets back the sum of squared
deviations. It checkpoints every round, so a coordinator killed mid-session resumes where it was.
Nothing outside this file names it: the engine, the SDK and the runners pick it up from its
``PackageSpec``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages import Artefact, Notebook, PackageSpec, Payload, Plan, SessionIO, register
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult

register(PackageSpec(
    name="relay", steps={"mask": "jf_relay:mask", "spread": "jf_relay:spread"},
    plan="jf_relay:RelayPlan", model="jf_relay:RelayResult", roles=("data",),
    notebook=Notebook(data_keys=("column",), rounds=True, predictors=False),
    description="test-only: pooled mean and variance by masked sums, two steps per round"))


def _column(datasets: dict[str, DatasetHandle], params: dict[str, Any]) -> np.ndarray:
    time.sleep(float(params.get("sleep", 0)))
    return datasets["data"].to_numpy([params["column"]], np.float64)[:, 0]


def mask(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    x = _column(datasets, params)
    return StepResult(tensors={"masked": np.array([x.sum() + float(tensors["offset"][0])])},
                      outputs={"token": params["token"], "count": len(x)},
                      num_examples=len(x))


def spread(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
           tensors: dict[str, np.ndarray]) -> StepResult:
    x = _column(datasets, params)
    return StepResult(tensors={"sq": np.array([((x - float(tensors["mean"][0])) ** 2).sum()])},
                      num_examples=len(x))


class RelayPlan(Plan):
    """Every round: per-client masked sums, then the spread around their pooled mean."""

    async def run(self, io: SessionIO) -> None:
        column, sleep = self.data_config["column"], float(self.model_config.get("sleep", 0))
        start = 1 if io.checkpoint is None else io.checkpoint.round + 1
        if io.checkpoint is not None:
            io.log("info", f"resuming after round {io.checkpoint.round}")
        mean = var = float("nan")
        for rnd in range(start, self.num_rounds + 1):
            clients = [c.client_id for c in io.clients]
            offsets = np.random.default_rng(rnd).normal(0, 1e3, len(clients))
            offsets -= offsets.mean()  # they cancel in the sum
            tokens = {cid: secrets.token_hex(4) for cid in clients}
            payloads = {cid: Payload({"column": column, "sleep": sleep, "token": tokens[cid]},
                                     {"offset": np.array([off])})
                        for cid, off in zip(clients, offsets, strict=True)}
            found = await io.step("mask", payloads, round=rnd)
            if any(a.outputs["token"] != tokens[a.client_id] for a in found):
                raise SessionFailed("a client answered with another client's payload")
            n = sum(a.outputs["count"] for a in found)
            mean = sum(float(a.tensors["masked"][0]) for a in found) / n
            spread_ = await io.step("spread", Payload({"column": column, "sleep": sleep},
                                                      {"mean": np.array([mean])}), round=rnd)
            var = sum(float(a.tensors["sq"][0]) for a in spread_) / n
            result = {"mean": mean, "variance": var, "n": n, "round": rnd}
            await io.commit(rnd, state={"last": np.array([mean, var])}, meta=result,
                            artefact=Artefact({"moments": np.array([mean, var])}, result),
                            done=rnd == self.num_rounds)


class RelayResult:
    """What the kernel gets back: the pooled mean and variance."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.mean, self.variance = (float(v) for v in tensors["moments"])
        self.meta = meta
