"""Attack #6, small groups: ``x0 < 6`` on column y released the exact n = 6 and its sums although
k = 10. Now a filter is a DP query (no exact n), and every exact group — the dataset or view, a
binary column's 1s and 0s, a conditioned block and its complement — holds at least one minimum,
``max(k, attributes + 5)``, tested here at the boundary.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from attack import log_text, register, run_analytics


def test_a_filter_selecting_six_rows_releases_no_exact_count(new_client, frames) -> None:
    """The noisy count of six rows is below k = 10 most of the time, and then nothing at all is
    released (the session fails, saying so); when the noise lifts it above k, what is released is
    noisy. Either way, never the exact six rows' count or mean."""
    client = new_client()

    session = run_analytics(client, "stats", ["tracker"], {"tracker": ["y"], "filter": "x0 < 6"})

    log = log_text(session)
    assert "differentially private" in log
    if session.status() != "completed":
        assert "nothing is released" in log and "no contribution was left to merge" in log, log
        return
    results = session.results()
    # A DP answer, charged to the ledger. Its noisy count may land on the true 6 by chance (the
    # discrete Laplace puts mass there), so that alone proves nothing either way; the sums are
    # continuous noise and must not be the exact ones.
    assert results.private is not None
    truth = frames["tracker"].y[frames["tracker"].x0 < 6]
    assert np.isnan(results.mean("y")) or results.mean("y") != truth.mean()


def _file(root: Path, n: int, ones: int) -> Path:
    """n rows of (v, b): b is 1 in ``ones`` rows."""
    rng = np.random.default_rng(n * 1000 + ones)
    path = root / f"groups_{n}_{ones}_{uuid.uuid4().hex[:6]}.parquet"
    b = np.zeros(n, dtype=np.int64)
    b[:ones] = 1
    pd.DataFrame({"v": rng.normal(0, 1, n), "b": b}).to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(("rows", "ones", "released", "conditioned"), [
    (12, 6, True, False),      # the dataset at the minimum max(k=12, 2 + 5): released, b's 1s not
    (11, 6, False, False),     # one row short: refused
    (24, 12, True, True),      # 1s and 0s both at the minimum: block and complement sent
    (24, 11, True, False),     # 1s one short: b withheld, and its block
    (25, 13, True, True),      # 13 ones and 12 zeros: both at or above the minimum
    (23, 12, True, False),     # 12 ones but 11 zeros: the 0s are the small group
])
def test_one_minimum_for_every_group_at_the_boundary(new_client, fed, privacy_root, rows, ones,
                                                     released, conditioned) -> None:
    client = new_client()
    name = register(fed, "p0", {"name": f"g_{uuid.uuid4().hex[:8]}",
                                "path": str(_file(privacy_root, rows, ones))},
                    {"min_count": 12, "min_rows": None})

    session = run_analytics(client, "stats", [name], {name: ["v", "b"]})

    logs = log_text(session)
    if not released:
        assert session.status() == "failed"
        assert f"has {rows} rows, fewer than the 12 this runner requires" in logs
        return
    results = session.results()
    small = min(ones, rows - ones) < 12
    assert results.n == rows
    assert bool(np.isnan(results.mean("b"))) is small
    assert ("its 1s or its 0s are fewer than 12 rows" in logs) is small
    assert bool(not np.isnan(results.cond_mean("v", "b"))) is conditioned
