"""Stats sessions across two real runners: exact merge, contracts on both sides, and the runners'
protections (minimum rows, small groups, cache, differencing)."""

from __future__ import annotations

import contextlib
import json
import math
import uuid

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from jupyter_fed import SessionTaskGroup
from jupyter_fed.errors import SessionFailed

BOTH = {"train_silo0": [], "train_silo1": []}


@pytest.fixture()
def client(principal_client):
    """A fresh principal, so earlier tests' budgets and cached answers are not its own."""
    return principal_client


@pytest.fixture(scope="module")
def silos(data_root) -> dict[str, pd.DataFrame]:
    return {f"train_silo{i}": pq.read_table(data_root / f"train_silo{i}.parquet").to_pandas()
            for i in range(2)}


def run(client, datasets, data_config=None, model_config=None, expect_failure=False):
    session = client.create_analytics_session("stats", "stats", "test",
                                              data_config=data_config or {n: [] for n in datasets},
                                              model_config=model_config or {},
                                              num_datasets=len(datasets)).start()
    group = SessionTaskGroup(session)
    for name in datasets:
        group.add_task(client.task_builder().stats(name))
    if expect_failure:
        with pytest.raises(SessionFailed):
            group.start().wait(60)
        return session
    assert group.start().wait(60)
    return session


def log_text(session) -> str:
    return "\n".join(row["message"] for row in session.logs())


def test_merged_statistics_are_exact_and_a_repeated_query_is_cached(client, silos) -> None:
    pooled = pd.concat(silos.values())
    x = pooled.to_numpy(np.float64)

    first = run(client, BOTH).results()
    again_session = run(client, BOTH)
    again = again_session.results()

    assert first.n == 4000 and first.columns == list(pooled.columns)
    np.testing.assert_allclose(first.xtx().to_numpy(), x.T @ x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(first.sums().to_numpy(), x.sum(axis=0), rtol=1e-9, atol=1e-9)
    assert first.cond_mean("x0", "y") == pytest.approx(pooled.x0[pooled.y == 1].mean(), rel=1e-9)
    assert first.peer("silo1/train_silo1").lincorr("x0", "x1") == pytest.approx(
        np.corrcoef(silos["train_silo1"].x0, silos["train_silo1"].x1)[0, 1], rel=1e-9)
    fit = first.ols("x0", ["x1", "x2", "y"])
    design = np.column_stack([np.ones(len(pooled)), pooled[["x1", "x2", "y"]].to_numpy(float)])
    coef = np.linalg.lstsq(design, pooled.x0.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(fit.coefficients.to_numpy(), coef, rtol=1e-9, atol=1e-12)
    # the same principal asking the same question gets the stored answer, bit for bit
    assert not any(first.peer(p).cached for p in first.peers)
    assert all(again.peer(p).cached for p in again.peers)
    assert "answered from this runner's cache" in log_text(again_session)
    np.testing.assert_array_equal(again.xtx().to_numpy(), first.xtx().to_numpy())


def test_send_side_block_shares_nothing_and_names_the_rule(client, silos) -> None:
    rule = "MEAN(x0) > 0"  # silo0 is shifted down, silo1 up
    assert silos["train_silo0"].x0.mean() < 0 < silos["train_silo1"].x0.mean()

    session = run(client, BOTH, model_config={"contract": rule})
    results = session.results()

    assert results.rejected == {"silo0/train_silo0": f"not shared by its runner: rule 1 failed: {rule}"}
    assert results.peers == ["silo1/train_silo1"] and results.n == 2000
    logs = log_text(session)
    assert f"statistics not shared, the contract failed: rule 1 failed: {rule}" in logs
    assert f"{silos['train_silo0'].x0.mean():.4f}"[:6] not in logs + json.dumps(results.meta)


def test_send_side_allow_shares_with_a_warning(client, silos) -> None:
    session = run(client, BOTH, model_config={"contract": "MEAN(x0) > 0", "send_action": "allow",
                                              "receive_action": "allow"})
    results = session.results()

    runner_note = "statistics shared although the contract failed: rule 1 failed: MEAN(x0) > 0"
    assert results.rejected == {} and results.n == 4000
    assert results.warnings["silo0/train_silo0"][-2:] == [
        runner_note, "kept although the contract failed at the coordinator: rule 1 failed: MEAN(x0) > 0"]
    assert "silo1/train_silo1" not in results.warnings
    assert f"silo0/train_silo0: {runner_note}" in log_text(session)


def test_receive_side_block_keeps_the_contribution_out_of_the_merge(client, silos) -> None:
    session = run(client, BOTH, model_config={"contract": "MEAN(x0) > 0", "send_action": "allow"})
    results = session.results()

    assert results.rejected == {"silo0/train_silo0": "rule 1 failed: MEAN(x0) > 0"}
    assert results.n == 2000
    assert results.mean("x0") == pytest.approx(silos["train_silo1"].x0.mean(), rel=1e-9)
    assert "contribution of silo0/train_silo0 left out: rule 1 failed: MEAN(x0) > 0" in log_text(session)
    with pytest.raises(KeyError, match="left out"):
        results.peer("train_silo0")


def publish(admin, name: str) -> None:
    """Make a dataset registered during a test visible to every principal (the test's own)."""
    policy = admin.get(f"/v1/datasets/{name}/policy").json()
    assert admin.put(f"/v1/datasets/{name}/policy",
                     json={**policy, "public": True}).status_code == 200


@contextlib.contextmanager
def view(federation, where: str, runner: str = "silo0", of: str = "train_silo0"):
    """A view of a silo's file registered by its custodian for the test, removed afterwards."""
    name = "view_" + uuid.uuid4().hex[:6]
    proc = federation.processes[runner]
    path = next(p for n, p in federation.silos[runner].items() if n == of)
    with proc.http() as admin:
        resp = admin.post("/v1/datasets", json={"name": name, "path": str(path), "view": where})
        assert resp.status_code == 201, resp.text
        publish(admin, name)
    try:
        yield name
    finally:
        with proc.http() as admin:
            admin.delete(f"/v1/datasets/{name}")


def test_too_few_rows_are_refused(client, federation, silos) -> None:
    cut = float(np.sort(silos["train_silo0"].x0.to_numpy())[-12])  # keeps 12 rows < 16 + 5
    with view(federation, f"x0 >= {cut!r}") as name:
        session = run(client, [name], expect_failure=True)

    # the view's row count is in the catalog: saying it reveals nothing more
    assert f"dataset {name!r} has 12 rows, fewer than the 21 this runner requires" \
        in log_text(session)


def test_small_conditioned_groups_are_suppressed(client, federation, silos) -> None:
    df = silos["train_silo0"]
    zeros = df[df.y == 0].x0.sort_values().to_numpy()
    cut = float(zeros[-25])  # y == 1 rows plus 25 rows where y == 0: >= 21, one minimum for all

    # (x3 > -1 keeps the view far from row sets other tests released: with 16 attributes, a
    # view within 21 rows of an earlier answer would be refused as differencing)
    with view(federation, f"(y == 1 AND x3 > -1) OR x0 >= {cut!r}") as name:
        session = run(client, [name])
    results = session.results()

    kept = df[((df.y == 1) & (df.x3 > -1)) | (df.x0 >= cut)]
    assert results.n == len(kept) and results.private is None  # a view: exact
    assert results.mean("y") == pytest.approx(kept.y.mean(), rel=1e-9)  # 25 zeros >= 21
    assert results.count("y") == (kept.y == 1).sum()  # COUNT of a binary column counts its 1s
    assert results.cond_mean("x0", "y") == pytest.approx(kept.x0[kept.y == 1].mean(), rel=1e-9)
    # 15 zeros: y's 0s are a small group (x3 > 0: far from the first view's rows, which a
    # view 10 rows away would otherwise be refused for)
    with view(federation, f"(y == 1 AND x3 > 0) OR x0 >= {float(zeros[-15])!r}") as name:
        fifteen = run(client, [name])
    assert math.isnan(fifteen.results().mean("y"))
    assert "its 1s or its 0s are fewer than 21 rows" in log_text(fifteen)


def test_views_differing_by_a_few_rows_are_refused(client, federation, silos) -> None:
    df = silos["train_silo0"]
    cut = float(df[df.x1 > 0.5].x2.sort_values().to_numpy()[-3])  # leaves out exactly 3 rows

    with view(federation, "x1 > 0.5") as first:
        run(client, [first])
    with view(federation, f"x1 > 0.5 AND x2 < {cut!r}") as second:
        session = run(client, [second], expect_failure=True)

    # max(k=10, 16 attributes + 5) = 21
    assert "by fewer than 21 rows" in log_text(session)


def test_an_incremental_update_with_too_few_new_rows_is_refused(client, federation, data_root,
                                                               silos) -> None:
    """Appending fewer than attributes + 5 rows and asking again would describe the new rows."""
    name = "grow_" + uuid.uuid4().hex[:6]
    path = data_root / f"{name}.parquet"
    base = silos["train_silo0"][["x0", "x1", "y"]]
    base.iloc[:100].to_parquet(path)
    proc = federation.processes["silo0"]
    with proc.http() as admin:
        assert admin.post("/v1/datasets", json={"name": name, "path": str(path)}).status_code == 201
        publish(admin, name)
    try:
        run(client, [name])
        base.iloc[:105].to_parquet(path)  # 5 new rows < 3 attributes + 5... and < k = 10
        refused = run(client, [name], expect_failure=True)
        base.iloc[:140].to_parquet(path)  # 40 new rows: enough
        accepted = run(client, [name])
    finally:
        with proc.http() as admin:
            admin.delete(f"/v1/datasets/{name}")

    assert "fewer than 10 rows" in log_text(refused)
    assert accepted.results().count("x0") == 140
