"""Kernel half: what session.model() returns."""

from __future__ import annotations

from typing import Any

import numpy as np


class MeanResult:
    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.mean, self.n = float(tensors["mean"][0]), int(meta["n"])
