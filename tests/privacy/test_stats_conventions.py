"""Statistics conventions found by comparing with centrally computed answers.

* A column binary at one runner and not at another (a pixel 0/1 at one silo, 0..16 at the other)
  is numeric everywhere, so the merge never mixes kinds: no NaN spreads into the merged moments.
* ``COUNT`` of a binary column counts its 1s (``ROWS`` counts rows), as the reference's examples
  (``COUNT(Iris_setosa) > 100``) assume.
* Contracts have a scope: peer rules at each runner, merged rules at the coordinator on the
  merged statistics; a session left with no contribution fails, naming the rules, not values.
* One file registered under several names has one budget.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from attack import log_text, register, run_analytics

BOTH = ["pixels_a", "pixels_b"]


def test_a_column_binary_at_one_runner_only_is_numeric_everywhere(new_client, frames) -> None:
    client = new_client()

    session = run_analytics(client, "stats", BOTH, {"pixels_a": [], "pixels_b": []})

    assert session.status() == "completed", log_text(session)
    results = session.results()
    pooled = pd.concat([frames["pixels_a"], frames["pixels_b"]])
    assert results.binary == ["pix1"]  # pix0 is 0/1 at p0 only: numeric everywhere
    assert not np.isnan(results.covariance_matrix().to_numpy()).any()
    np.testing.assert_allclose(results.covariance_matrix().to_numpy(),
                               np.cov(pooled.to_numpy(float), rowvar=False, bias=True), rtol=1e-9)
    assert results.count("pix1") == pooled.pix1.sum() and results.rows("pix1") == len(pooled)
    assert results.count("pix0") == len(pooled)  # numeric: rows seen
    assert results.cond_mean("v", "pix1") == pytest.approx(pooled.v[pooled.pix1 == 1].mean())
    assert np.isnan(results.cond_mean("v", "pix0"))  # never a conditioning column


def test_merged_rules_are_checked_on_the_merged_statistics(new_client) -> None:
    client = new_client()
    pooled_rule = "ROWS(v) >= 1000"  # 600 rows at each runner: true only when merged

    as_peer = run_analytics(client, "stats", BOTH, {"pixels_a": ["v"], "pixels_b": ["v"]},
                            {"contract": pooled_rule})
    as_merged = run_analytics(client, "stats", BOTH, {"pixels_a": ["v"], "pixels_b": ["v"]},
                              {"merged_contract": pooled_rule})
    failing = run_analytics(client, "stats", BOTH, {"pixels_a": ["v"], "pixels_b": ["v"]},
                            {"merged_contract": "ROWS(v) >= 5000\nMEAN(v) > -100"})

    assert as_peer.status() == "failed"  # every contribution blocked: the session fails ...
    assert "no contribution was left to merge" in as_peer.info()["error"]
    assert "rule 1 failed: ROWS(v) >= 1000" in as_peer.info()["error"]  # ... naming the rule
    assert as_merged.status() == "completed" and as_merged.results().n == 1200
    assert failing.status() == "failed"
    error = failing.info()["error"]
    assert "merged contract: rule 1 failed: ROWS(v) >= 5000" in error and "rule 2" not in error
    assert "1200" not in error  # the rule, never the value


def test_the_same_file_under_two_names_has_one_budget(fed, new_client, privacy_root) -> None:
    client = new_client()
    path = str(privacy_root / "tracker.parquet")
    twin = register(fed, "p0", {"name": f"twin_{uuid.uuid4().hex[:6]}", "path": path})

    for name in ("tracker", twin):  # 6 + 6 > 10: the second is refused
        session = client.create_eda_session("eda", data_config={name: ["x1"]}, epsilon=6.0
                                            ).start()
        from jupyter_fed import SessionTaskGroup
        from jupyter_fed.errors import SessionFailed

        try:
            SessionTaskGroup(session).add_task(client.task_builder().eda(name)).start().wait(60)
        except SessionFailed:
            pass
    assert session.status() == "failed"
    assert "privacy budget exceeded" in log_text(session) and "4 of 10 remains" in log_text(session)
    with fed.processes["p0"].http() as admin:
        rows = [r for r in admin.get("/v1/budget", params={"principal": client.user}).json()]
    assert len(rows) == 1 and rows[0]["spent"] == pytest.approx(6.0)
    assert set(rows[0]["dataset"].split(",")) >= {"tracker", twin}
