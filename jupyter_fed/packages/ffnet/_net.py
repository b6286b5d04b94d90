"""The ffnet architecture, built identically by the runner, the coordinator and the kernel."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from jupyter_fed.packages.ffnet.config import FFNetConfig

if TYPE_CHECKING:
    import torch


def build(cfg: FFNetConfig) -> torch.nn.Module:
    import torch

    p = cfg.model.params
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
           "leaky_relu": torch.nn.LeakyReLU, "elu": torch.nn.ELU, "gelu": torch.nn.GELU,
           "selu": torch.nn.SELU, "silu": torch.nn.SiLU}[p.activation]
    layers: list[torch.nn.Module] = []
    width = p.input_size
    for h in p.hidden_layer_sizes:
        layers += [torch.nn.Linear(width, h), act()]
        width = h
    layers.append(torch.nn.Linear(width, p.output_size))
    return torch.nn.Sequential(*layers)


def initial_weights(cfg: FFNetConfig) -> dict[str, np.ndarray]:
    """Seeded initial weights, drawn with numpy so the coordinator never has to import torch.

    Same law as ``torch.nn.Linear``'s default: weights and biases uniform on ±1/sqrt(fan_in).
    Names and shapes match ``build(cfg).state_dict()`` (Linear layers at even Sequential indices).
    """
    rng = np.random.default_rng(cfg.seed)
    p = cfg.model.params
    sizes = [p.input_size, *p.hidden_layer_sizes, p.output_size]
    out: dict[str, np.ndarray] = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        bound = 1.0 / np.sqrt(fan_in)
        out[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        out[f"{2 * i}.bias"] = rng.uniform(-bound, bound, (fan_out,)).astype(np.float32)
    return out


def to_numpy(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def load_numpy(net: torch.nn.Module, weights: dict[str, np.ndarray]) -> torch.nn.Module:
    import torch

    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, strict=True)
    return net
