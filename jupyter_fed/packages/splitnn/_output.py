"""Where a prediction session's predictions go: a csv or parquet file at the label party.

Predictions are row-level — one value per person — so they never leave the runner: they are
written under the runner's data roots (``ctx.output_path`` applies the runner's own checks), in
aligned-row order, beside the party's own id columns. What leaves is the file's place, its number
of rows and its column names.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import DatasetHandle, StepContext
from jupyter_fed.packages.splitnn.config import SplitNNConfig, parse_options

__all__ = ["write_predictions"]


def write_predictions(ctx: StepContext, handle: DatasetHandle, out: Any, cfg: SplitNNConfig,
                      params: dict[str, Any]) -> dict[str, Any]:
    """Write ``out`` (the model's outputs, one row per linked row) to the task's storage_path."""
    import pandas as pd
    import torch

    options = parse_options(str(params.get("client")), params.get("options"))
    if not options.storage_path:
        raise ConfigError("the label party's vfl_predict task names no storage_path",
                          "give storage_path: a .csv or .parquet path under the runner's "
                          "data roots")
    if ctx.output_path is None:
        raise ConfigError("predictions can only be written by a runner", "")
    target = ctx.output_path(options.storage_path)
    ids = [c.name for c in handle.info.columns if c.role == "id"]
    frame = handle.to_pandas(ids) if ids else pd.DataFrame(index=range(handle.num_rows))
    frame = frame.reset_index(drop=True)
    if cfg.ml_task.type == "regression":
        frame["prediction"] = out.numpy()[:, 0].astype(np.float64)
    elif options.raw_output:
        prob = torch.softmax(out, dim=1).numpy().astype(np.float64)
        for k in range(prob.shape[1]):
            frame[f"probability_{k}"] = prob[:, k]
    else:
        frame["prediction"] = out.argmax(1).numpy().astype(np.int64)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if target.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return {"storage_path": options.storage_path, "path": str(target), "rows": len(frame),
            "columns": list(frame.columns), "id_columns": ids,
            "format": target.suffix.lower().lstrip(".")}
