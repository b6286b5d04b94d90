"""The fitted axes as a torch module (imported only where torch is wanted: ``as_pytorch``)."""

from __future__ import annotations

import torch


class PCAModule(torch.nn.Module):
    """Features → components: ``(x - mean) @ componentsᵀ`` (divided by ``sqrt(explained_variance)``
    when whitening). ``state_dict()`` holds the axes, the eigenvalues and the mean.
    """

    def __init__(self, components: torch.Tensor, explained_variance: torch.Tensor,
                 explained_variance_ratio: torch.Tensor, mean: torch.Tensor, whiten: bool) -> None:
        super().__init__()
        self.register_buffer("components", components)
        self.register_buffer("explained_variance", explained_variance)
        self.register_buffer("explained_variance_ratio", explained_variance_ratio)
        self.register_buffer("mean", mean)
        self.whiten = whiten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.to(self.mean.dtype) - self.mean) @ self.components.T
        return z / torch.sqrt(self.explained_variance) if self.whiten else z

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor:
        z = z.to(self.mean.dtype)
        if self.whiten:
            z = z * torch.sqrt(self.explained_variance)
        return z @ self.components + self.mean
