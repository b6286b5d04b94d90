"""The ffnet architecture, built identically by the runner, the coordinator and the kernel."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from jupyter_fed.packages.ffnet.config import FFNetConfig

if TYPE_CHECKING:
    import torch


STANDARDIZE = "standardize"
"""Name of the standardisation layer: its buffers are ``standardize.mean`` / ``standardize.scale``."""


def build(cfg: FFNetConfig) -> torch.nn.Module:
    """The network: ``[standardize] → Linear → act → … → Linear``; Linear layers keep the names
    ``0``, ``2``, … whether or not the standardisation layer is there."""
    from collections import OrderedDict

    import torch

    from jupyter_fed.packages._layers import Standardize

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
    named: list[tuple[str, torch.nn.Module]] = [(str(i), m) for i, m in enumerate(layers)]
    if cfg.standardize:
        named.insert(0, (STANDARDIZE, Standardize(p.input_size)))
    return torch.nn.Sequential(OrderedDict(named))


def initial_weights(cfg: FFNetConfig) -> dict[str, np.ndarray]:
    """Seeded initial weights, drawn with numpy so the coordinator never has to import torch.

    Same law as ``torch.nn.Linear``'s default: weights and biases uniform on ±1/sqrt(fan_in).
    Names and shapes match ``build(cfg).state_dict()`` (Linear layers at even Sequential indices).
    """
    rng = np.random.default_rng(cfg.seed)
    p = cfg.model.params
    sizes = [p.input_size, *p.hidden_layer_sizes, p.output_size]
    out: dict[str, np.ndarray] = {}
    if cfg.standardize:  # identity until the federated moments are known (before round 1)
        out[f"{STANDARDIZE}.mean"] = np.zeros(p.input_size, dtype=np.float32)
        out[f"{STANDARDIZE}.scale"] = np.ones(p.input_size, dtype=np.float32)
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        bound = 1.0 / np.sqrt(fan_in)
        out[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        out[f"{2 * i}.bias"] = rng.uniform(-bound, bound, (fan_out,)).astype(np.float32)
    return out


def merge_moments(parts: list[tuple[int, np.ndarray, np.ndarray]]
                  ) -> tuple[int, np.ndarray, np.ndarray]:
    """Pooled ``(n, mean, m2)`` from per-silo counts, means and centred sums of squares.

    Chan et al.'s pairwise update: exact (up to rounding) and stable, unlike sums of squares.
    """
    n, mean, m2 = 0, None, None
    for k, mu, s2 in parts:
        mu, s2 = np.asarray(mu, np.float64), np.asarray(s2, np.float64)
        if mean is None:
            n, mean, m2 = k, mu.copy(), s2.copy()
            continue
        total = n + k
        delta = mu - mean
        mean = mean + delta * (k / total)
        m2 = m2 + s2 + delta ** 2 * (n * k / total)
        n = total
    if mean is None:
        raise ValueError("no moments to merge")
    assert m2 is not None
    return n, mean, m2


def standardization(n: int, mean: np.ndarray, m2: np.ndarray) -> dict[str, np.ndarray]:
    """The standardisation buffers; a constant predictor keeps scale 1 (it is only centred)."""
    std = np.sqrt(np.maximum(m2, 0.0) / max(n, 1))
    scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return {f"{STANDARDIZE}.mean": mean.astype(np.float32),
            f"{STANDARDIZE}.scale": scale.astype(np.float32)}


def to_numpy(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def load_numpy(net: torch.nn.Module, weights: dict[str, np.ndarray]) -> torch.nn.Module:
    import torch

    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, strict=True)
    return net
