"""A test-only package, ``faulty_ffnet``: ffnet whose runner half misbehaves on request.

A runner started with ``JF_FAULT_FILE=<path>`` (and ``JUPYTER_FED_PACKAGES=jf_faults``) reads its
fault mode from that file at every fit step, so a test can switch one runner from honest to
malicious between sessions; an empty or missing file means honest ffnet. Modes:

- ``sleep:S`` - take S seconds, reporting progress (a slow but live runner);
- ``nan`` / ``inf`` - poison the weights; ``scale`` - multiply the update by 1e6;
- ``shape`` - drop a row of the first weight matrix; ``negative`` - claim -5 examples;
- ``inflate`` - claim ten times the dataset's rows.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.ffnet import PACKAGE as FFNET
from jupyter_fed.packages.ffnet import local
from jupyter_fed.packages.registry import PackageSpec, register

register(PackageSpec(
    name="faulty_ffnet",
    steps={"fit": "jf_faults:fit", "evaluate": "jf_faults:evaluate",
           "moments": "jupyter_fed.packages.ffnet.local:moments"},
    plan="jupyter_fed.packages.ffnet.plan:FFNetPlan",
    model="jupyter_fed.packages.ffnet.model:FFNetModel",
    notebook=FFNET.notebook,  # a %%federate cell reads like ffnet's
))


def fit(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
        tensors: dict[str, np.ndarray]) -> StepResult:
    path = os.environ.get("JF_FAULT_FILE", "")
    mode = Path(path).read_text().strip() if path and os.path.exists(path) else ""
    if mode.startswith("sleep:"):
        end = time.monotonic() + float(mode.split(":")[1])
        while time.monotonic() < end:
            ctx.progress(1 - (end - time.monotonic()) / float(mode.split(":")[1]), "sleeping")
            time.sleep(0.05)
    result = local.fit(ctx, datasets, params, tensors)
    w = result.tensors
    first = next(k for k in w if w[k].ndim == 2)  # the first weight matrix
    if mode == "nan":
        w[first][0, 0] = np.nan
    elif mode == "inf":
        w[first][0, 0] = np.inf
    elif mode == "scale":
        for k in w:
            w[k] = (tensors[k] + (w[k] - tensors[k]) * 1e6).astype(w[k].dtype)
    elif mode == "shape":
        w[first] = w[first][1:]
    elif mode == "negative":
        result.num_examples = -5
    elif mode == "inflate":
        result.num_examples *= 10
    return result


def evaluate(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> StepResult:
    return local.evaluate(ctx, datasets, params, tensors)
