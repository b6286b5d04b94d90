"""The yardstick for federated training: the same network trained on the pooled rows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jupyter_fed.demo.data import FEATURES, TARGET

DEMO_DATA_CONFIG = {"predictors": FEATURES, "target": TARGET}


def centralized_baseline(paths: list[Path], model_config: dict[str, Any], epochs: int
                         ) -> tuple[Any, float]:
    """The same network trained on the pooled rows for the same number of epochs."""
    import pyarrow as pa
    import torch

    from jupyter_fed.packages.base import StepContext
    from jupyter_fed.packages.ffnet import _net
    from jupyter_fed.packages.ffnet.config import parse
    from jupyter_fed.packages.ffnet.local import fit
    from jupyter_fed.runner.data import LoadedDataset, inspect, read_table

    torch.set_num_threads(1)  # as the runners do: a model this small gains nothing from more
    pooled = pa.concat_tables([read_table(p) for p in paths])
    info = inspect("pooled", paths[0])
    cfg = {**model_config, "local_epochs": epochs}
    weights = _net.initial_weights(parse(cfg, DEMO_DATA_CONFIG)[0])
    started = time.perf_counter()
    result = fit(StepContext("central", 1), {"train": LoadedDataset(info, pooled)},
                 {"model_config": cfg, "data_config": DEMO_DATA_CONFIG}, weights)
    return result.tensors, time.perf_counter() - started


def score_on_test(weights: dict[str, Any], model_config: dict[str, Any], test: Path
                  ) -> dict[str, float]:
    """AUC and accuracy of an ffnet on the test file, computed the same way for every model."""
    import pyarrow.parquet as pq

    from jupyter_fed.packages._metrics import binary_auc
    from jupyter_fed.packages.ffnet.model import FFNetModel

    model = FFNetModel(weights, {"model_config": model_config, "data_config": DEMO_DATA_CONFIG})
    df = pq.read_table(test).to_pandas()
    prob = model.predict(df)[:, 1]
    y = df[TARGET].to_numpy()
    return {"auc": binary_auc(y == 1, prob), "accuracy": float(((prob > 0.5) == (y == 1)).mean())}
