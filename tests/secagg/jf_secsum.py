"""A package that exists only in the test suite: secure sums of per-silo arrays, with faults.

``contribute`` returns the column sums of the silo's ``x0..x4`` (a vector), their cross-product
matrix, and a seeded pseudo-random vector of ``width`` values (to check any shape and size); the
plan sums them with ``SessionIO.step(..., secure=SecureSum(...))`` and stores only the totals.
Faults, from ``model_config``: clients named in ``fail`` raise inside the step (after the key
agreement and the shares: a dropout mid-round); clients named in ``sleep`` sleep that long before
answering (so a test can kill their runner while they do).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from jupyter_fed.errors import StepFailed
from jupyter_fed.packages import Artefact, PackageSpec, Payload, Plan, SecureSum, SessionIO, register
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult

COLUMNS = [f"x{i}" for i in range(5)]

register(PackageSpec(
    name="secsum", steps={"contribute": "jf_secsum:contribute"}, plan="jf_secsum:SecSumPlan",
    model="jf_secsum:SecSumResult", roles=("data",),
    description="test-only: secure sums of per-silo arrays, with faults on request"))


def silo_arrays(rows: np.ndarray, seed: int, width: int) -> dict[str, np.ndarray]:
    """What one silo contributes (also used by the tests to compute the plain sum)."""
    return {"sums": rows.sum(axis=0), "matrix": rows.T @ rows,
            "noise": np.random.default_rng(seed).normal(0, 100, width)}


def contribute(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
               tensors: dict[str, np.ndarray]) -> StepResult:
    time.sleep(float(params.get("sleep", 0)))
    if params.get("fail"):
        raise StepFailed("this client was told to fail after the key agreement", "")
    rows = datasets["data"].to_numpy(COLUMNS, np.float64)
    out = silo_arrays(rows, int(params["seed"]), int(params["width"]))
    return StepResult(tensors=out, outputs={"seed": params["seed"]}, num_examples=len(rows))


class SecSumPlan(Plan):
    """Each round: one secure sum over every client still in the session."""

    async def run(self, io: SessionIO) -> None:
        cfg = self.model_config
        fail, sleep = set(cfg.get("fail", [])), dict(cfg.get("sleep", {}))
        secure = SecureSum(("sums", "matrix", "noise"), clip=float(cfg.get("clip", 1e7)),
                           precision=float(cfg.get("precision", 1e-6)),
                           scale_by_examples=bool(cfg.get("scale", False)))
        for rnd in range(1, self.num_rounds + 1):
            payloads = {c.client_id: Payload({
                "seed": 1000 * rnd + i, "width": int(cfg.get("width", 7)),
                "fail": c.runner in fail and rnd == 1, "sleep": sleep.get(c.runner, 0)})
                for i, c in enumerate(io.clients)}
            found = await io.step("contribute", payloads, round=rnd, secure=secure)
            assert found.total is not None
            seeds = {a.client_id: a.outputs["seed"] for a in found}
            leaked = [k for a in found for k in a.tensors]
            meta = {"round": rnd, "clients": sorted(seeds), "seeds": seeds,
                    "dropped": found.dropped, "leaked": leaked,
                    "num_examples": sum(a.num_examples for a in found)}
            await io.commit(rnd, meta=meta, artefact=Artefact(dict(found.total), meta),
                            info={"clients": sorted(seeds), "dropped": found.dropped},
                            done=rnd == self.num_rounds)


class SecSumResult:
    """The totals of the last round, as the kernel gets them."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.total, self.meta = tensors, meta
