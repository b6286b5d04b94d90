"""The same split network trained centrally on joined rows: what SplitNN is measured against.

Used by the tests and ``benchmarks/splitnn.py``: every party's bottom network and the head, built
by :mod:`._nets` from the same configuration, trained in one process on the rows joined on their
ids, batch by batch in the same order (one permutation per epoch), with each party's predictors
standardised by its own training rows — SplitNN without the exchanges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.packages._metrics import roc_auc
from jupyter_fed.packages.splitnn import _nets
from jupyter_fed.packages.splitnn._batches import chunk_batches, num_batches
from jupyter_fed.packages.splitnn.config import parse

__all__ = ["train_central"]


def train_central(model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                  train: Mapping[str, np.ndarray], y: np.ndarray,
                  test: Mapping[str, np.ndarray], y_test: np.ndarray, *, epochs: int,
                  batch_size: int) -> dict[str, float]:
    """Train on ``train`` (client → its predictor block, rows joined) and return the test
    ``roc_auc``, ``accuracy`` and ``seconds`` of training."""
    import time

    import torch

    cfg, data = parse({**model_config, "prl_session_id": "central"}, dict(data_config))
    assert cfg.model is not None
    clients = list(data.clients)
    nets = {}
    for c in clients:
        torch.manual_seed(_nets.seeded(cfg.seed, c))
        nets[c] = _nets.bottom(cfg.model.feature(c), cfg.standardize)
        if cfg.standardize:
            x = torch.from_numpy(train[c].astype(np.float32))
            std = x.std(0)
            nets[c].standardize.mean.copy_(x.mean(0))
            nets[c].standardize.scale.copy_(torch.where(std > 1e-12, std, torch.ones_like(std)))
    torch.manual_seed(_nets.seeded(cfg.seed, data.label))
    top = _nets.head(cfg.model.head, _nets.head_width(cfg, clients))
    params = [p for n in nets.values() for p in n.parameters()] + list(top.parameters())
    opt = _nets.optimizer(cfg, params)
    xs = {c: torch.from_numpy(train[c].astype(np.float32)) for c in clients}
    yt = torch.from_numpy(y.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()
    n = len(y)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for b in chunk_batches(cfg.seed, epoch, 0, n, batch_size, num_batches(n, batch_size)):
            idx = torch.from_numpy(b)
            opt.zero_grad(set_to_none=True)
            out = top(torch.cat([nets[c](xs[c][idx]) for c in clients], 1))
            loss_fn(out, yt[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        out = top(torch.cat([nets[c].eval()(torch.from_numpy(test[c].astype(np.float32)))
                             for c in clients], 1))
        prob = torch.softmax(out, 1).numpy().astype(np.float64)
    return {"roc_auc": roc_auc(y_test, prob), "accuracy": float((prob.argmax(1) == y_test).mean()),
            "seconds": seconds}
