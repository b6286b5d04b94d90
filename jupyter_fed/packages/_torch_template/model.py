"""Kernel half: the trained weights in the builder's own ``Model``."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import user_model


class TorchModel:
    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.weights, self.meta = tensors, meta

    def as_pytorch(self) -> Any:
        import torch

        net = user_model.Model(**self.meta.get("model_args", {}))
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.weights.items()})
        return net.eval()
