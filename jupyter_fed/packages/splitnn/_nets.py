"""The splitnn networks (torch), built identically by every party, the kernel and the benchmark.

A party's bottom network maps its predictors to an embedding: ``[standardize] → Linear → act → …
→ Linear``. The head, at the label party, maps the concatenated embeddings (in the order of
``data_config``'s clients) to the output: ``act → Linear → act → … → Linear`` — the leading
activation makes bottom + head the same network as one MLP whose first layers are block-diagonal,
which is what the central baseline trains.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.packages.splitnn.config import FeatureNet, LabelNet, SplitNNConfig

if TYPE_CHECKING:
    import torch

__all__ = ["bottom", "head", "head_width", "load_numpy", "optimizer", "seeded", "to_numpy"]


def _act(name: str) -> Any:
    import torch

    return {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
            "leaky_relu": torch.nn.LeakyReLU, "elu": torch.nn.ELU, "gelu": torch.nn.GELU,
            "selu": torch.nn.SELU, "silu": torch.nn.SiLU}[name]


def bottom(p: FeatureNet, standardize: bool) -> torch.nn.Module:
    """One party's feature network (with its standardisation buffers when ``standardize``)."""
    import torch

    from jupyter_fed.packages._layers import Standardize

    layers: list[tuple[str, torch.nn.Module]] = []
    if standardize:
        layers.append(("standardize", Standardize(p.input_size)))
    width = p.input_size
    for i, h in enumerate(p.hidden_layer_sizes):
        layers += [(f"l{i}", torch.nn.Linear(width, h)), (f"a{i}", _act(p.activation)())]
        width = h
    layers.append(("out", torch.nn.Linear(width, p.output_size)))
    return torch.nn.Sequential(OrderedDict(layers))


def head_width(cfg: SplitNNConfig, clients: list[str]) -> int:
    assert cfg.model is not None
    return sum(cfg.model.feature(c).output_size for c in clients)


def head(p: LabelNet, width: int) -> torch.nn.Module:
    """The label party's head over ``width`` concatenated embedding values."""
    import torch

    layers: list[tuple[str, torch.nn.Module]] = [("a_in", _act(p.activation)())]
    for i, h in enumerate(p.hidden_layer_sizes):
        layers += [(f"l{i}", torch.nn.Linear(width, h)), (f"a{i}", _act(p.activation)())]
        width = h
    layers.append(("out", torch.nn.Linear(width, p.output_size)))
    return torch.nn.Sequential(OrderedDict(layers))


def seeded(seed: int, client: str) -> int:
    """A party's initialisation seed: the session's seed and the party's name, so every party's
    network starts from its own draw and a rerun starts from the same."""
    import zlib

    return (int(seed) * 1_000_003 + zlib.crc32(client.encode())) % (2**31 - 1)


def optimizer(cfg: SplitNNConfig, params: Any) -> Any:
    import torch

    from jupyter_fed.errors import ConfigError

    kw = dict(cfg.optimizer.params)
    if "learning_rate" in kw:
        kw["lr"] = kw.pop("learning_rate")
    try:
        return getattr(torch.optim, cfg.optimizer.name)(params, **kw)
    except TypeError as exc:
        raise ConfigError(f"model_config.optimizer.params: {exc}",
                          f"use parameters that torch.optim.{cfg.optimizer.name} accepts") from None


def to_numpy(module: torch.nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_numpy(module: torch.nn.Module, arrays: dict[str, np.ndarray], prefix: str = ""
               ) -> torch.nn.Module:
    import torch

    state = {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
             if k.startswith(prefix)}
    module.load_state_dict(state, strict=True)
    return module
