"""A test-only package whose one step reads a whole dataset into memory (``whole_read``).

It does what ffnet, glm's SGD solver and gbm did before they read their rows in batches:
``handle.to_numpy`` of every column at once. ``test_big_silo`` submits it to a runner whose step
memory limit is below the dataset's decoded size, to show that path cannot train there. Runners
load it through ``JUPYTER_FED_PACKAGES``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages import Artefact, Notebook, PackageSpec, Payload, Plan, SessionIO, register
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult

register(PackageSpec(
    name="whole_read", steps={"read": "jf_whole_read:read"}, plan="jf_whole_read:WholePlan",
    model="jf_whole_read:WholeResult", roles=("train",),
    notebook=Notebook(rounds=False, predictors=False),
    description="test-only: reads a whole dataset into memory, as training used to"))


def read(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    handle = datasets["train"]
    rows = handle.to_numpy([c.name for c in handle.info.columns], np.float64)
    return StepResult(outputs={"rows": len(rows)}, num_examples=len(rows))


class WholePlan(Plan):
    async def run(self, io: SessionIO) -> None:
        await io.step("read", Payload({}), round=1)
        await io.commit(1, artefact=Artefact({}, {}), done=True)


class WholeResult:
    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
