"""A test-only package, ``hostile``: steps that misbehave the way a model builder's request can.

Registered in a runner started with ``JUPYTER_FED_PACKAGES=jf_hostile``:

- ``hog``: allocates memory (50 MiB blocks, every page touched) up to ``max_mb``, then idles;
- ``spin``: burns CPU for ``seconds`` without ever reporting progress (so it never notices a
  cancel);
- ``nap``: takes ``seconds``, reporting progress (a long but well-behaved step);
- ``quick``: returns at once.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.registry import PackageSpec, register

register(PackageSpec(
    name="hostile",
    steps={name: f"jf_hostile:{name}" for name in ("hog", "spin", "nap", "quick")},
    description="test-only: steps that overrun their limits",
))

BLOCK = 50 * 2**20


def hog(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
        tensors: dict[str, np.ndarray]) -> StepResult:
    held = []
    while len(held) * BLOCK < int(params.get("max_mb", 2000)) * 2**20:
        held.append(np.ones(BLOCK // 8))
        ctx.progress(0.5, f"holding {len(held) * 50} MiB")
        time.sleep(0.01)
    time.sleep(float(params.get("then_sleep", 60)))
    return StepResult(outputs={"held_mb": len(held) * 50})


def spin(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    end, x = time.monotonic() + float(params.get("seconds", 60)), 0
    while time.monotonic() < end:
        x += 1
    return StepResult(outputs={"spins": x})


def nap(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
        tensors: dict[str, np.ndarray]) -> StepResult:
    seconds = float(params.get("seconds", 10))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.progress(1 - (end - time.monotonic()) / seconds, "napping")
        time.sleep(0.05)
    return StepResult(outputs={"pid": os.getpid()})


def quick(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    return StepResult(outputs={"pid": os.getpid()})
