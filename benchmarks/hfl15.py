"""The HFL-15 task as Flower's side of both comparisons runs it (``vs_flower.py`` and
``vs_flower_simulation.py``): the network, the rows, one local SGD epoch, the test scores.

One definition, so the two comparisons measure Flower on the very same task. Imported by the
benchmark scripts (their folder is on ``sys.path``) and pickled by value into Flower's Ray actors.
"""

from __future__ import annotations

from typing import Any

FEATURES = [f"x{i}" for i in range(15)]
HIDDEN = [6, 6, 6]
LR, BATCH = 0.2, 64

_CACHE: dict[str, Any] = {}


def torch_net() -> Any:
    """The MLP 15 → 6 → 6 → 6 → 2 (parameter names as ffnet's Linear layers 0, 2, …)."""
    import torch

    layers: list[Any] = []
    width = len(FEATURES)
    for h in HIDDEN:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 2))


def load(path: str, rows: Any = None) -> tuple[Any, Any]:
    """A partition's tensors (all rows, or the positions ``rows``), read once per process — a
    Ray actor — as a Flower user's ClientApp would."""
    key = f"{path}:{None if rows is None else (rows[0], len(rows))}"
    if key not in _CACHE:
        import numpy as np
        import pyarrow.parquet as pq
        import torch

        table = pq.read_table(path)
        if rows is not None:
            table = table.take(rows)
        x = np.column_stack([table.column(c).to_numpy() for c in FEATURES]).astype(np.float32)
        _CACHE[key] = (torch.from_numpy(x),
                       torch.from_numpy(table.column("y").to_numpy().astype(np.int64)))
    return _CACHE[key]


def local_epoch(net: Any, x: Any, y: Any, seed: int | None = None) -> None:
    """One epoch of plain SGD over ``x, y`` in shuffled batches (``seed``: the shuffle's)."""
    import torch

    opt, loss_fn = torch.optim.SGD(net.parameters(), lr=LR), torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    order = torch.randperm(len(y), generator=gen)
    net.train()
    for b in range(0, len(y), BATCH):
        idx = order[b:b + BATCH]
        opt.zero_grad()
        loss_fn(net(x[idx]), y[idx]).backward()
        opt.step()


def scores(net: Any, x: Any, y: Any) -> tuple[float, float]:
    """Cross-entropy loss and ROC AUC of ``net`` on ``x, y``."""
    import numpy as np
    import torch

    from jupyter_fed.packages._metrics import binary_auc

    net.eval()
    with torch.no_grad():
        out = net(x)
        loss = float(torch.nn.functional.cross_entropy(out, y))
        prob = torch.softmax(out, 1)[:, 1].numpy().astype(np.float64)
    return loss, binary_auc(y.numpy() == 1, prob)


def by_value_into_ray_actors() -> None:
    """Have Ray pickle this module's functions by value, so Flower's actors need not import it
    (they do not have the benchmarks folder on their path)."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
