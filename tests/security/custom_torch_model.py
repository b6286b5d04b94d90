"""A builder's torch model and data loader: the torch form of custom code (test-only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, inputs: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(inputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def load(dataset: Any, data: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    x = dataset.to_numpy(data["predictors"], np.float32)
    y = dataset.to_numpy([data["target"]], np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)
