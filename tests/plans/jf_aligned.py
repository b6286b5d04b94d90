"""A test-only package that reads aligned rows, as a vertical session will (``aligned_probe``).

Its one step opens ``datasets[role].aligned(prl_session_id)`` and hands back one numeric column
in aligned order — returning a column is what no real package may do; here it lets the tests
compare what each party's aligned rows are. Runners load it through ``JUPYTER_FED_PACKAGES``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages import Artefact, Notebook, PackageSpec, Payload, Plan, SessionIO, register
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult

register(PackageSpec(
    name="aligned_probe", steps={"read": "jf_aligned:read"}, plan="jf_aligned:ProbePlan",
    model="jf_aligned:ProbeResult", roles=("train", "test"),
    notebook=Notebook(rounds=False, predictors=False),
    description="test-only: one column of each party's aligned rows"))


def read(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    out = {}
    for role, handle in datasets.items():
        aligned = handle.aligned(params["prl_session_id"])
        out[role] = aligned.to_numpy([params["column"]], np.float64)[:, 0]
        assert aligned.num_rows == len(out[role]) == aligned.info.num_rows
    return StepResult(tensors=out, num_examples=len(out["train"]))


class ProbePlan(Plan):
    async def run(self, io: SessionIO) -> None:
        found = await io.step("read", Payload(dict(self.data_config)), round=1)
        arrays = {f"{a.client_id}:{role}": v for a in found for role, v in a.tensors.items()}
        await io.commit(1, artefact=Artefact(arrays, {}), done=True)


class ProbeResult:
    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.columns = tensors
