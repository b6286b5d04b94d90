"""Runner half: a column's sum and count, and a probe that tries what the sandbox forbids."""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult


def sums(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    x = datasets["data"].to_numpy([params["column"]], np.float64)[:, 0]
    return StepResult(tensors={"sum": np.array([x.sum()])}, outputs={"count": len(x)},
                      num_examples=len(x))


def probe(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    what = params["probe"]
    try:  # hostile code hides its attempt; the sandbox reports it anyway
        if what["kind"] == "socket":
            import socket

            socket.create_connection(("127.0.0.1", int(what["port"])), timeout=2).close()
        elif what["kind"] == "read":
            with open(what["path"]) as f:
                f.read()
    except Exception:
        pass
    return StepResult(outputs={"probed": what["kind"]})
