"""Torch modules the packages' networks share (imported only where torch is)."""

from __future__ import annotations

import torch


class Standardize(torch.nn.Module):
    """``(x - mean) / scale`` with fixed buffers: the federated moments of the training rows.

    Buffers, not parameters: they travel and are stored with the weights (so a model handed back
    takes raw features) but no optimiser or DP-SGD clipping ever touches them.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale
