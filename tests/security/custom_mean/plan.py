"""Coordinator half: one round of sums, pooled into the mean (after an optional probe)."""

from __future__ import annotations

import numpy as np

from jupyter_fed.packages import Artefact, Payload, Plan, SessionIO


class MeanPlan(Plan):
    async def run(self, io: SessionIO) -> None:
        probe = self.model_config.get("probe")
        if probe:
            await io.step("probe", Payload({"probe": probe}), round=1)
        found = await io.step("sums", Payload({"column": self.data_config["column"]}), round=1)
        n = sum(int(a.outputs["count"]) for a in found)
        mean = sum(float(a.tensors["sum"][0]) for a in found) / n
        result = {"mean": mean, "n": n}
        await io.commit(1, state={}, meta=result,
                        artefact=Artefact({"mean": np.array([mean])}, result), done=True)
