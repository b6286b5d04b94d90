"""Configs shared by tests (imported as a plain module: tests/ is on sys.path via rootdir)."""

from __future__ import annotations

from typing import Any

FEATURES = [f"x{i}" for i in range(15)]
DATA_CONFIG = {"predictors": FEATURES, "target": "y"}


def model_config(**overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "strategy": {"name": "FedAvg", "params": {}},
        "model": {"params": {"input_size": 15, "hidden_layer_sizes": [16, 8], "output_size": 2}},
        "ml_task": {"type": "classification", "params": {}},
        "optimizer": {"name": "SGD", "params": {"learning_rate": 0.1, "momentum": 0.9}},
        "batch_size": 32,
        "seed": 3,
    }
    cfg.update(overrides)
    return cfg
