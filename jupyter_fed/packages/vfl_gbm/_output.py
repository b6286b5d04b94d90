"""Where a vfl_gbm prediction session's predictions go: a file at the label party, as splitnn.

Predictions are row-level, so they never leave the runner: written under its data roots
(``ctx.output_path`` applies the runner's checks) in aligned-row order beside the party's own id
columns. What leaves is the file's place, its number of rows and its column names.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import DatasetHandle, StepContext
from jupyter_fed.packages.vfl_gbm.config import VflGbmConfig, parse_options

__all__ = ["write_predictions"]


def write_predictions(ctx: StepContext, handle: DatasetHandle, raw: np.ndarray,
                      cfg: VflGbmConfig, params: dict[str, Any]) -> dict[str, Any]:
    """Write the raw scores' predictions (one per linked row) to the task's storage_path."""
    import pandas as pd

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
    if not cfg.classification:
        frame["prediction"] = raw.astype(np.float64)
    else:
        p1 = 1.0 / (1.0 + np.exp(-raw))
        if options.raw_output:
            frame["probability_0"], frame["probability_1"] = 1.0 - p1, p1
        else:
            frame["prediction"] = (p1 > 0.5).astype(np.int64)
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
