"""GLMs as one-layer torch networks: the SGD solver's training, and ``as_pytorch()``.

Imported only where torch is wanted (a runner's SGD step, the kernel); the coordinator never
imports it. The training loss is half the family's unit deviance (the negative log-likelihood up to
a constant), the mean over a batch; the elastic-net penalty is applied as a proximal step after
every optimiser step (shrink by the L2 part, soft-threshold by the L1 part), on the slopes only —
so it needs no gradient of its own, and under DP-SGD it is post-processing of private weights.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from jupyter_fed.packages._layers import Standardize
from jupyter_fed.packages.glm._weights import BIAS, MEAN, SCALE, WEIGHT

__all__ = ["GLMModule", "build", "half_deviance", "inverse_link", "proximal"]


def build(width: int, standardize: bool) -> torch.nn.Module:
    """``[standardize] → linear``: the linear predictor ``η`` (names match ``_weights``)."""
    layers: list[tuple[str, torch.nn.Module]] = [("linear", torch.nn.Linear(width, 1))]
    if standardize:
        layers.insert(0, ("standardize", Standardize(width)))
    return torch.nn.Sequential(OrderedDict(layers))


def inverse_link(name: str, eta: torch.Tensor) -> torch.Tensor:
    if name == "identity":
        return eta
    if name == "log":
        return torch.exp(torch.clamp(eta, max=80.0))
    if name == "logit":
        return torch.sigmoid(eta)
    if name == "inverse":
        return 1.0 / eta
    if name == "inverse_squared":
        return torch.rsqrt(eta)
    return eta * eta  # sqrt


def half_deviance(family: str, link: str, eta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per example: half the unit deviance, up to terms free of the parameters."""
    if family == "logistic":
        return torch.nn.functional.softplus(eta) - y * eta
    if family == "poisson" and link == "log":
        return torch.exp(torch.clamp(eta, max=80.0)) - y * eta
    mu = inverse_link(link, eta)
    if family == "normal":
        return 0.5 * (y - mu) ** 2
    if family == "poisson":
        return mu - y * torch.log(mu)
    if family == "gamma":
        return y / mu + torch.log(mu)
    return (y - mu) ** 2 / (2.0 * y * mu * mu)  # inverse_gaussian


def proximal(net: torch.nn.Module, lr: float, l1: float, l2: float) -> None:
    """The elastic-net proximal step on the slopes (the intercept is not penalised)."""
    if l1 <= 0 and l2 <= 0:
        return
    with torch.no_grad():
        w = net.get_submodule("linear").weight
        w.div_(1.0 + lr * l2)
        if l1 > 0:
            w.copy_(torch.sign(w) * torch.clamp(w.abs() - lr * l1, min=0.0))


class GLMModule(torch.nn.Module):
    """Raw features → the mean response ``μ`` (``(n, 1)``): linear predictor, then inverse link."""

    def __init__(self, coef: torch.Tensor, link: str) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(len(coef) - 1, 1, dtype=torch.float64)
        with torch.no_grad():
            self.linear.weight.copy_(coef[1:].unsqueeze(0))
            self.linear.bias.copy_(coef[:1])
        self.link = link

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return inverse_link(self.link, self.linear(x.to(torch.float64)))


def load(net: torch.nn.Module, weights: dict[str, Any]) -> torch.nn.Module:
    import numpy as np

    names = {MEAN: "standardize.mean", SCALE: "standardize.scale", WEIGHT: "linear.weight",
             BIAS: "linear.bias"}
    net.load_state_dict({names[k]: torch.from_numpy(np.array(v, dtype=np.float32))
                         for k, v in weights.items()}, strict=True)
    return net
