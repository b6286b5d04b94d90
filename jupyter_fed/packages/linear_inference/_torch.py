"""The bundle as a torch module (imported only where torch is wanted: the kernel's as_pytorch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from jupyter_fed.packages.linear_inference.model import LinearInferenceModel


class BundleModule(torch.nn.Module):
    """``(n, shared + chunked)`` → ``(n, chunked)``: model ``j``'s prediction in column ``j``.

    Buffers ``intercept`` (m), ``shared`` (m × k) and ``chunked`` (m) hold the coefficients.
    """

    def __init__(self, model: LinearInferenceModel) -> None:
        super().__init__()
        coef = torch.as_tensor(model.coef, dtype=torch.float64)
        k = len(model.shared)
        self.register_buffer("intercept", coef[:, 0].clone())
        self.register_buffer("shared", coef[:, 1:k + 1].clone())
        self.register_buffer("chunked", coef[:, -1].clone())
        self.logistic = model.logistic
        self._model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float64)
        k = self.shared.shape[1]
        eta = self.intercept + x[:, :k] @ self.shared.T + x[:, k:] * self.chunked
        return torch.sigmoid(eta) if self.logistic else eta

    def p_values(self) -> Any:
        return self._model.p_values()

    def summary(self, predictor: str | int) -> Any:
        return self._model.summary(predictor)

    def as_dataframe(self) -> Any:
        return self._model.as_dataframe()
