"""``stats`` with ``smpc: true`` (SymetryML's ``fed_use_smpc``): merged by secure aggregation.

The runners send raw sums in one layout, masked; the coordinator stores only their total. The
merged statistics equal the plain merge to the quantisation error (and the rounding of raw
sums), ``peer()`` says why there are no peers, and peer-scope contracts still run at each runner
before anything is masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from secagg_support import NAMES

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.errors import SessionFailed

COLUMNS = ["x0", "x1", "x2", "x3", "y"]


def stats_session(fed: LocalFederation, state: Path, model_config: dict[str, Any],
                  k: int = 3) -> Any:
    client = jupyter_fed.connect(embedded=True, state_dir=state, runners=fed.runners)
    try:
        session = client.create_analytics_session(
            "stats", "moments", data_config={"columns": COLUMNS}, model_config=model_config,
            num_datasets=k).start()
        tb = client.task_builder()
        group = SessionTaskGroup(session)
        for name in NAMES[:k]:
            group.add_task(tb.stats("train", runner=name))
        group.start().wait(120)
        return session.results(), [r["message"] for r in session.logs()]
    finally:
        client.close()


def test_smpc_merge_equals_the_plain_merge(all_up: LocalFederation, tmp_path: Path) -> None:
    contract = {"contract": "COUNT(x0) > 100", "merged_contract": "ROWS(x0) >= 1000"}
    plain, _ = stats_session(all_up, tmp_path / "plain", contract)
    secure, logs = stats_session(all_up, tmp_path / "smpc", {**contract, "fed_use_smpc": True})

    assert secure.smpc and not plain.smpc
    assert secure.n == plain.n == 1200 and secure.columns == plain.columns
    assert secure.binary == plain.binary == ["y"]
    for a in COLUMNS:
        assert secure.count(a) == plain.count(a)
        assert secure.mean(a) == pytest.approx(plain.mean(a), rel=1e-12, abs=1e-12)
        assert secure.variance(a) == pytest.approx(plain.variance(a), rel=1e-10)
        assert secure.cond_mean(a, "y") == pytest.approx(plain.cond_mean(a, "y"), rel=1e-12,
                                                         abs=1e-12)
        assert secure.cond_variance(a, "y") == pytest.approx(plain.cond_variance(a, "y"),
                                                             rel=1e-10, abs=1e-12)
        for b in COLUMNS:
            assert secure.covar(a, b) == pytest.approx(plain.covar(a, b), rel=1e-9, abs=1e-10)
    np.testing.assert_allclose(secure.correlation_matrix().to_numpy(),
                               plain.correlation_matrix().to_numpy(), rtol=1e-9, atol=1e-10)
    assert secure.meta["results"]["merged_report"]["passed"]
    assert any("secure sum of compute over 3 client(s)" in m for m in logs)

    assert len(plain.peers) == 3 and secure.peers == []
    assert len(secure.contributors) == 3
    with pytest.raises(KeyError, match="merged by secure aggregation"):
        secure.peer("silo0")


def test_smpc_peer_contracts_still_run_at_each_runner(all_up: LocalFederation,
                                                       tmp_path: Path) -> None:
    with pytest.raises(SessionFailed, match=r"not shared by its runner: rule 1 failed"):
        stats_session(all_up, tmp_path / "smpc", {"contract": "ROWS(x0) > 100000", "smpc": True})


def test_smpc_needs_the_same_columns_everywhere(fed10: LocalFederation, tmp_path: Path) -> None:
    """Layouts must agree: a secure sum adds position by position."""
    from jupyter_fed.packages.stats.plan import StatsPlan

    plan = StatsPlan({"smpc": True}, {"columns": []})
    assert plan.secure_sum() is not None
    with pytest.raises(SessionFailed, match="same columns"):
        plan._layout({"a/train": ["x0", "x1"], "b/train": ["x0", "x2"]})
    assert plan._layout({"a/train": ["x0", "y"], "b/train": ["y", "x0"]})["columns"] == ["x0", "y"]
