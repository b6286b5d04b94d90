"""The yardstick for federated training: the same network trained on the pooled rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_fed.demo.data import FEATURES, TARGET

DEMO_DATA_CONFIG = {"predictors": FEATURES, "target": TARGET}


@dataclass
class Baseline:
    """The centrally trained network, its training time, and its test metrics per epoch."""

    weights: dict[str, Any]
    seconds: float
    curve: dict[str, list[float]] = field(default_factory=dict)
    """Metric name → one test value per epoch, entry 0 the initial model (like a session's)."""


def centralized_baseline(paths: list[Path], model_config: dict[str, Any], epochs: int,
                         test: Path | None = None) -> Baseline:
    """The same network, initial weights and standardisation trained on the pooled rows.

    One epoch per federated round (each round trains one local epoch), so the curves line up;
    ``seconds`` counts training only, as the runners' ``train_seconds`` do.
    """
    import pyarrow as pa
    import torch

    from jupyter_fed.packages.base import StepContext
    from jupyter_fed.packages.ffnet.local import evaluate, fit, moments
    from jupyter_fed.packages.ffnet.plan import FFNetPlan
    from jupyter_fed.runner.data import LoadedDataset, inspect, read_table

    torch.set_num_threads(1)  # as the runners do: a model this small gains nothing from more
    pooled = LoadedDataset(inspect("pooled", paths[0]), pa.concat_tables([read_table(p) for p in paths]))
    datasets: dict[str, Any] = {"train": pooled}
    if test is not None:
        datasets["test"] = LoadedDataset(inspect("test", test), read_table(test))
    cfg = {**model_config, "local_epochs": 1}
    plan = FFNetPlan(cfg, DEMO_DATA_CONFIG, epochs)  # the same initial model a session starts from
    params = {"model_config": cfg, "data_config": DEMO_DATA_CONFIG}
    weights = plan.initial_weights()
    if plan.prepare_step is not None:
        m = moments(StepContext("central", 0), {"train": pooled}, params, {})
        weights = plan.prepared(weights, [("pooled", m.outputs, m.tensors)])
    curve: dict[str, list[float]] = {}
    seconds = 0.0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        result = fit(StepContext("central", epoch), datasets, params, weights)
        seconds += time.perf_counter() - started
        weights = result.tensors
        _record(curve, result.outputs.get("metrics", {}))
    if test is not None:
        _record(curve, evaluate(StepContext("central", epochs + 1), datasets, params, weights)
                .outputs["metrics"])
    return Baseline(weights, seconds, curve)


def _record(curve: dict[str, list[float]], metrics: dict[str, Any]) -> None:
    for key, value in metrics.items():
        if key.startswith("test_") and key != "test_num_examples":
            curve.setdefault(key.removeprefix("test_"), []).append(float(value))


def score_on_test(weights: dict[str, Any], model_config: dict[str, Any], test: Path
                  ) -> dict[str, float]:
    """AUC and accuracy of an ffnet on the test file, computed the same way for every model."""
    import pyarrow.parquet as pq

    from jupyter_fed.packages import binary_auc
    from jupyter_fed.packages.ffnet.model import FFNetModel

    model = FFNetModel(weights, {"model_config": model_config, "data_config": DEMO_DATA_CONFIG})
    df = pq.read_table(test).to_pandas()
    prob = model.predict(df)[:, 1]
    y = df[TARGET].to_numpy()
    return {"auc": binary_auc(y == 1, prob), "accuracy": float(((prob > 0.5) == (y == 1)).mean())}
