"""Runner half: train the builder's ``Model`` (``user_model.py``) on this silo's rows.

``user_model.load(dataset, params)`` turns the dataset into ``(x, y)`` tensors; the model starts
from the global weights the coordinator sent and trains ``epochs`` epochs of mini-batch SGD.
Only the weights, the number of rows and the mean training loss leave.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult

from . import user_model


def _loss(out: Any, y: Any) -> Any:
    import torch

    if hasattr(user_model, "loss"):
        return user_model.loss(out, y)
    if y.dtype in (torch.int64, torch.int32):
        return torch.nn.functional.cross_entropy(out, y)
    return torch.nn.functional.mse_loss(out, y)


def fit(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
        tensors: dict[str, np.ndarray]) -> StepResult:
    import torch

    torch.manual_seed(int(params.get("seed", 0)) + ctx.round)
    net = user_model.Model(**params.get("model_args", {}))
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    x, y = user_model.load(datasets["train"], params.get("data", {}))
    opt = torch.optim.SGD(net.parameters(), lr=float(params.get("lr", 0.05)))
    n, bs, epochs = len(x), int(params.get("batch_size", 64)), int(params.get("epochs", 1))
    total = 0.0
    net.train()
    for epoch in range(epochs):
        order, total = torch.randperm(n), 0.0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            opt.zero_grad(set_to_none=True)
            loss = _loss(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        ctx.progress((epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}")
    weights = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return StepResult(tensors=weights, outputs={"train_loss": total / max(n, 1)},
                      num_examples=int(n))
