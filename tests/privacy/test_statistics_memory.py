"""Issue 12, finding 2 (stats part): 600 binary columns took +1.7 GB, growing with the cube of the
binary column count (a p × p block per binary column). Conditioned blocks now keep per-column
statistics only (O(b·p)); a query above the policy's ``max_statistics_mb`` is refused before
any row is read.
"""

from __future__ import annotations

import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from attack import log_text, register, run_analytics

from jupyter_fed.errors import NotFoundError
from jupyter_fed.packages.base import StepContext
from jupyter_fed.packages.stats.local import compute
from jupyter_fed.runner.data import LoadedDataset, inspect


def binary_file(root: Path, columns: int, rows: int = 2000) -> Path:
    rng = np.random.default_rng(columns)
    path = root / f"wide_{columns}_{uuid.uuid4().hex[:6]}.parquet"
    pd.DataFrame((rng.random((rows, columns)) < 0.5).astype(np.int8),
                 columns=[f"b{i}" for i in range(columns)]).to_parquet(path, index=False)
    return path


def peak_mb(path: Path, tmp: Path) -> float:
    info = inspect("wide", path)
    ctx = StepContext("t", 1, policy={"data": {"min_count": 10}}, cache_dir=tmp)
    tracemalloc.start()
    try:
        compute(ctx, {"data": LoadedDataset(info, None, path)},
                {"data_config": {}, "model_config": {}, "dataset": "wide"}, {})
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_memory_grows_no_faster_than_the_square_of_the_columns(tmp_path) -> None:
    peaks = {c: peak_mb(binary_file(tmp_path, c), tmp_path / f"cache{c}") for c in (150, 300, 600)}

    print("\npeak traced memory by binary columns: "
          + ", ".join(f"{c}: {mb:.0f} MB" for c, mb in peaks.items()))
    assert peaks[600] < 250  # was ~1,700 MB
    assert peaks[600] / peaks[300] < 4.5 and peaks[300] / peaks[150] < 4.5  # not 8 (cubic)


def test_a_query_above_the_policy_size_is_refused_before_reading(fed, new_client,
                                                                 privacy_root) -> None:
    client = new_client()
    name = register(fed, "p1", {"name": f"wide_{uuid.uuid4().hex[:6]}",
                                "path": str(binary_file(privacy_root, 600))},
                    {"max_statistics_mb": 20})

    session = run_analytics(client, "stats", [name], {name: []})

    assert session.status() == "failed"
    assert "(600 columns, 600 of them binary) need about" in log_text(session)
    assert "more than the 20 MB this runner allows" in log_text(session)
    with pytest.raises(NotFoundError):  # nothing was computed
        session.results()
