"""How much memory an ffnet step will need, from its config alone, before anything is built.

The runner calls :func:`estimate` on untrusted params and refuses a step whose estimate is over its
memory limit: ``hidden_layer_sizes: [25000, 25000]`` fits in a 1 KB request but is 625 million
weights — 2.5 GB for the weights alone, several times that while training. The estimate counts
what the step holds at its peak, in float32:

- the parameters, several times over: the incoming global model (decoded), the network, its
  gradients, the optimiser's state (momentum: one copy; Adam-like: two), and the outgoing copy;
- with DP-SGD, per-example gradients for one batch (opacus keeps ``batch_size`` copies);
- activations of one training batch (forward and backward) and of one evaluation block
  (``_metrics`` pushes :data:`EVAL_ROWS` rows at a time), and
  one loss and prediction per evaluation row;
- the feature blocks of the training rows when the step needs them all in memory (DP-SGD,
  balanced undersampling). Otherwise rows come through ``DatasetHandle.batches``, which holds
  at most a quarter of the step's limit in memory and streams a larger dataset, so the rows
  themselves never make a step too large.

It errs on the high side by a small factor; the runner's memory limit still stops a step that
grows beyond it.
"""

from __future__ import annotations

import itertools
from typing import Any

from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages.ffnet.config import FFNetConfig

FLOAT = 4
EVAL_ROWS = 16_384
"""Rows ``local._metrics`` pushes through the network at once when measuring a model."""
_OPTIMIZER_SLOTS = {"SGD": 1, "Adagrad": 1, "RMSprop": 2, "Adadelta": 2}
"""float32 copies of the parameters an optimiser keeps (SGD: momentum buffer); others: 2."""


def parameters(cfg: FFNetConfig) -> int:
    """Number of weights and biases of the configured network."""
    p = cfg.model.params
    sizes = [p.input_size, *p.hidden_layer_sizes, p.output_size]
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(sizes))


def estimate(step: str, params: dict[str, Any], rows: dict[str, int]) -> int:
    """Peak bytes an ffnet ``fit`` or ``evaluate`` step adds to its worker (see module doc)."""
    cfg = parse_config(FFNetConfig, (params or {}).get("model_config"), "model_config")
    p = cfg.model.params
    widths = [p.input_size, *p.hidden_layer_sizes, p.output_size]
    weights = parameters(cfg) * FLOAT
    eval_rows = rows.get("test", rows.get("train", 0))
    train_rows = rows.get("train", 0) if step == "fit" else 0
    # Evaluation: two adjacent layers' activations of one block, and per row its loss, its
    # label and its predicted probabilities (float64).
    evaluation = min(eval_rows, EVAL_ROWS) * max(a + b for a, b in itertools.pairwise(widths)) \
        * FLOAT + eval_rows * (p.output_size + 2) * 8
    whole = cfg.differential_privacy_params is not None or cfg.balance_train_datasets
    data = train_rows * (p.input_size + 2) * FLOAT * 2 if whole else 0
    if step != "fit":
        return 3 * weights + evaluation + data
    copies = 4 + _OPTIMIZER_SLOTS.get(cfg.optimizer.name, 2)  # in, net, grads, out + optimiser
    batch = min(cfg.batch_size, max(train_rows, 1))
    activations = 3 * batch * sum(widths) * FLOAT
    per_example = batch * weights if cfg.differential_privacy_params is not None else 0
    return copies * weights + per_example + activations + max(evaluation, 0) + data
