"""Shared data and configs of the simulation tests (imported as a plain module)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jupyter_fed.demo.data import FEATURES, _rows

DATA_CONFIG = {"predictors": FEATURES, "target": "y"}


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """The demo's synthetic rows (15 features, binary ``y``) as one DataFrame."""
    return pd.DataFrame(_rows(np.random.default_rng(seed), rows, 0.0))


def ffnet_config(**overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model": {"params": {"input_size": 15, "hidden_layer_sizes": [8], "output_size": 2}},
        "optimizer": {"name": "SGD", "params": {"learning_rate": 0.2}},
        "batch_size": 64, "seed": 5}
    cfg.update(overrides)
    return cfg


def weights(session: Any) -> dict[str, np.ndarray]:
    """The session's model, as the arrays the kernel received."""
    from jupyter_fed.wire import decode

    data, _meta = session._backend.artefact_bytes(session.id)
    return decode(data)
