"""Kernel half of ffnet: the trained network, rebuilt from safetensors + JSON (never unpickled)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.packages.ffnet import _net
from jupyter_fed.packages.ffnet.config import parse

if TYPE_CHECKING:
    import pandas as pd
    import torch


class FFNetModel:
    """The global model a session produced.

    Parameters
    ----------
    weights
        Named parameter arrays of the network.
    meta
        ``model_config``, ``data_config`` and the round the weights come from.
    """

    def __init__(self, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.weights = weights
        self.meta = meta
        self.config, self.data_config = parse(meta["model_config"], meta["data_config"])
        if self.config.normalize is None and f"{_net.STANDARDIZE}.mean" not in weights:
            # a model trained before standardisation was on by default
            self.config = self.config.model_copy(update={"normalize": False})

    @property
    def round(self) -> int:
        return int(self.meta.get("round", -1))

    def as_pytorch(self) -> torch.nn.Module:
        """A ready ``torch.nn.Module`` in eval mode; outputs are logits (classification)."""
        net = _net.load_numpy(_net.build(self.config), self.weights)
        return net.eval()

    def predict(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Class probabilities (classification) or predictions (regression) for local rows.

        A DataFrame is reduced to the session's predictors in their training order.
        """
        import torch

        if hasattr(data, "loc"):
            data = data[self.data_config.predictors].to_numpy()
        x = torch.as_tensor(np.asarray(data, dtype=np.float32))
        with torch.no_grad():
            out = self.as_pytorch()(x)
        if self.config.ml_task.type == "classification":
            out = torch.softmax(out, dim=1)
        return out.numpy()

    def __repr__(self) -> str:
        p = self.config.model.params
        return (f"FFNetModel({p.input_size} → {p.hidden_layer_sizes} → {p.output_size}, "
                f"{self.config.ml_task.type}, round {self.round})")
