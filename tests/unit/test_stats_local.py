"""The runner step of stats on real files: streaming, exactness, refusals, cache and differencing."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from jupyter_fed.errors import ConfigError, DatasetError, PermissionDenied
from jupyter_fed.packages.base import StepContext, StepResult
from jupyter_fed.packages.stats._moments import Stats
from jupyter_fed.packages.stats.local import compute
from jupyter_fed.runner.data import LoadedDataset, inspect
from jupyter_fed.wire import DatasetInfo

FEATURES = ["x0", "x1", "x2", "x3", "y"]


def frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 4)), columns=FEATURES[:4])
    df["y"] = (rng.random(n) < 0.45).astype(np.int64)
    df.insert(0, "id", [f"r{i}" for i in range(n)])
    return df


@pytest.fixture()
def data(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    df = frame()
    path = tmp_path / "silo.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=97)
    return path, df


@functools.cache
def registered(path: Path) -> DatasetInfo:
    """As the runner's registry holds it: inspected once (its time stamp versions the data)."""
    return inspect("silo", path, id_columns=["id"])


def run(path: Path, data_config: dict | None = None, model_config: dict | None = None, *,
        cache: Path, principal: str = "alice", min_count: int = 10, view: str | None = None
        ) -> StepResult:
    """The step as a runner calls it; ``view`` reads the rows of a view of the same file."""
    info = registered(path)
    handle = LoadedDataset(info, None, path)
    if view is not None:
        from jupyter_fed.runner.views import ViewDataset, view_rows

        rows = view_rows(view, [c.name for c in info.columns])
        info = inspect("silo", path, id_columns=["id"], rows=rows)
        info.view = view
        handle = ViewDataset(info, path, lambda p: pq.read_table(p))
    grant = {"group": "file:silo", "epsilon": 1.0, "delta": 1e-6}  # one file, one group
    ctx = StepContext("task", 1, policy={"data": {"min_count": min_count, "min_rows": None,
                                                  "grant": grant}},
                      cache_dir=cache, principal=principal)
    return compute(ctx, {"data": handle},
                   {"data_config": data_config or {}, "model_config": model_config or {},
                    "dataset": "silo"}, {})


def stats(result: StepResult) -> Stats:
    return Stats.from_tensors(result.tensors, result.outputs)


def test_iter_batches_streams_parquet_and_csv_without_loading_the_table(data, tmp_path) -> None:
    path, df = data
    csv = tmp_path / "silo.csv"
    pacsv.write_csv(pa.Table.from_pandas(df, preserve_index=False), csv)

    for source in (path, csv):
        handle = LoadedDataset(inspect("silo", source, id_columns=["id"]), None, source)
        blocks = list(handle.iter_batches(["y", "x2"], batch_rows=64))

        assert [len(b) for b in blocks] == [64] * 9 + [24]
        np.testing.assert_array_equal(np.concatenate(blocks), df[["y", "x2"]].to_numpy(np.float64))
        assert handle._loaded is None  # streamed, never materialised
    with pytest.raises(DatasetError, match="no column"):
        next(handle.iter_batches(["nope"]))


def test_statistics_are_exact_and_independent_of_batch_size(data, tmp_path) -> None:
    path, df = data
    x = df[FEATURES].to_numpy(np.float64)

    small = stats(run(path, {"batch_rows": 7}, cache=tmp_path / "a"))
    large = stats(run(path, {"batch_rows": 100_000}, cache=tmp_path / "b"))

    assert small.columns == FEATURES and small.binary == ["y"] and list(small.cond) == ["y"]
    for s in (small, large):
        np.testing.assert_allclose(s.total.sums, x.sum(axis=0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(s.total.xtx, x.T @ x, rtol=1e-9, atol=1e-9)
        ones = x[x[:, 4] == 1]
        block = s.cond["y"]
        assert block.n == len(ones)
        np.testing.assert_allclose(block.mean, ones.mean(axis=0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(block.ss, ((ones - ones.mean(axis=0)) ** 2).sum(axis=0),
                                   rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(small.total.m2, large.total.m2, rtol=1e-12)
    np.testing.assert_allclose(small.cond["y"].ss, large.cond["y"].ss, rtol=1e-9, atol=1e-9)


def test_columns_by_name_or_index_and_contract_columns_are_added(data, tmp_path) -> None:
    path, _ = data

    result = run(path, {"silo": [1, "x2"]}, {"contract": "COND_MEAN(x3, y) > -5"}, cache=tmp_path)

    assert result.outputs["columns"] == ["x0", "x2", "x3", "y"]  # index 1 = x0 (0 is the id)
    with pytest.raises(ConfigError, match="no column 'nope'"):
        run(path, {"silo": ["nope"]}, cache=tmp_path)
    with pytest.raises(ConfigError, match="id column"):
        run(path, {"silo": ["id"]}, cache=tmp_path)


def test_a_dataset_below_the_release_minimum_is_refused_without_saying_how_many(tmp_path) -> None:
    df = frame(11)  # 11 rows < max(k = 10, 5 attributes + 5) + 1
    path = tmp_path / "tiny.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)

    with pytest.raises(PermissionDenied, match="fewer rows than the 12 this runner") as info:
        run(path, {}, cache=tmp_path, min_count=12)

    assert " 11 " not in info.value.message


def test_a_filter_makes_the_answer_private_never_exact(data, tmp_path) -> None:
    path, df = data
    threshold = np.sort(df.x0.to_numpy())[-8]  # the filter keeps 7 rows

    result = run(path, {"filter": f"x0 >= {float(threshold)!r}"}, cache=tmp_path)
    s = stats(result)

    assert s.private == {"epsilon": 1.0, "delta": 1e-6}
    assert s.total.n != 7 and s.cond == {}  # noisy count, no conditioned blocks
    assert "differentially private" in result.outputs["warnings"][0]


def test_an_identical_query_is_answered_from_the_cache(data, tmp_path) -> None:
    path, _ = data
    config = {"filter": {"column": "x1", "op": ">", "value": -1}}

    first = run(path, config, cache=tmp_path)
    again = run(path, {"filter": "x1 > -1.0"}, cache=tmp_path)  # same filter, spelt differently
    other = run(path, config, cache=tmp_path, principal="bob")

    assert (first.outputs["cached"], again.outputs["cached"], other.outputs["cached"]) == \
        (False, True, False)
    assert "answered from this runner's cache" in again.outputs["warnings"][-1]
    for name, value in first.tensors.items():
        np.testing.assert_array_equal(again.tensors[name], value)


def test_a_view_differing_by_fewer_than_the_minimum_rows_is_refused(data, tmp_path) -> None:
    path, df = data
    cut = np.sort(df.x2.to_numpy())[-3]  # x2 < cut leaves out exactly 3 rows

    run(path, {}, cache=tmp_path)
    with pytest.raises(PermissionDenied, match="differ from those of an earlier answer"):
        run(path, {}, cache=tmp_path, principal="mallory", view=f"x2 < {float(cut)!r}")
    same_rows = run(path, {}, cache=tmp_path, view="x2 < 1000")  # all rows: difference 0
    far = run(path, {}, cache=tmp_path, view="x2 < 0")

    assert stats(same_rows).total.n == len(df)
    assert stats(far).total.n == (df.x2 < 0).sum()


def test_three_views_cannot_isolate_a_row(data, tmp_path) -> None:
    """The tracker over views: all rows, x2 < t and x2 >= t' with one row in both."""
    path, df = data
    order = np.sort(df.x2.to_numpy())
    t = float(order[300])

    run(path, {}, cache=tmp_path)
    run(path, {}, cache=tmp_path, view=f"x2 <= {t!r}")  # 301 rows
    with pytest.raises(PermissionDenied, match="a combination of two"):
        run(path, {}, cache=tmp_path, principal="bob", view=f"x2 >= {t!r}")  # 300 rows, 1 shared


def test_a_conditioned_block_near_an_earlier_answer_is_dropped_or_refused(data, tmp_path) -> None:
    path, df = data
    ones = df[df.y == 1]
    cut = np.sort(ones.x0.to_numpy())[2]  # y == 1 AND x0 > cut: the 1s of y but 3 rows

    run(path, {}, cache=tmp_path)  # shares the rows where y is 1
    with pytest.raises(PermissionDenied, match="fewer than 10 rows"):
        run(path, {}, cache=tmp_path, view=f"y == 1 AND x0 > {float(cut)!r}")


def test_small_groups_are_withheld(tmp_path) -> None:
    df = frame(400, seed=3)
    df["rare"] = 0
    df.loc[df.index[:4], "rare"] = 1  # 4 rows: fewer than k
    df["few"] = 0
    df.loc[df.index[10:21], "few"] = 1  # 11 rows: >= k = 10 but < 7 attributes + 5 = 12
    path = tmp_path / "rare.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)

    result = run(path, {}, cache=tmp_path)
    s = stats(result)

    # one minimum for every group: max(k = 10, 7 attributes + 5) = 12
    rare, few = s.columns.index("rare"), s.columns.index("few")
    for j in (rare, few):
        assert np.isnan(s.total.mean[j]) and np.isnan(s.total.m2[j]).all()
    assert "rare" not in s.cond and "few" not in s.cond and "y" in s.cond
    assert any("rare" in w and "fewer than 12" in w for w in result.outputs["warnings"])
    assert any("few" in w and "fewer than 12" in w for w in result.outputs["warnings"])
    assert np.isnan(s.cond["y"].mean[few]) and np.isnan(s.cond["y"].ss[rare])


def test_send_side_contract_blocks_or_warns(data, tmp_path) -> None:
    path, df = data
    rule = f"MEAN(x0) > {df.x0.mean() + 0.5:.3f}"

    blocked = run(path, {}, {"contract": f"COUNT(x0) > 10\n{rule}"}, cache=tmp_path)
    allowed = run(path, {}, {"contract": rule, "send_action": "allow"}, cache=tmp_path)

    assert blocked.tensors == {} and blocked.outputs["blocked"] is True
    assert blocked.outputs["contract"]["failed"] == [
        {"rule": 2, "line": 2, "text": rule, "reason": ""}]
    assert f"{df.x0.mean():.3f}" not in str(blocked.outputs)
    assert allowed.outputs["blocked"] is False and allowed.tensors
    assert allowed.outputs["warnings"][-1] == ("statistics shared although the contract failed: "
                                               f"rule 1 failed: {rule}")


def test_filters_on_unknown_or_id_columns_fail_by_name(data, tmp_path) -> None:
    path, _ = data

    with pytest.raises(ConfigError, match="no column 'zz'"):
        run(path, {"filter": "zz > 1"}, cache=tmp_path)
    with pytest.raises(ConfigError, match="'id' is an id column"):
        run(path, {"filter": "id > 1"}, cache=tmp_path)


def test_blocks_hold_no_cross_products_so_no_three_way_cell_shows() -> None:
    from jupyter_fed.packages.stats._moments import CondMoments, Moments
    from jupyter_fed.packages.stats._protect import protect

    i = np.arange(400)
    a, b = (i < 200).astype(float), (i % 2 == 0).astype(float)
    c = ((i % 4 == 1) | (i >= 300)).astype(float)  # large groups pairwise...
    c[[0, 2, 4]] = 1.0  # ...but only 3 rows have a, b and c
    x = np.column_stack([np.random.default_rng(0).normal(size=400), a, b, c])
    cols = ["v", "a", "b", "c"]

    def block(rows: np.ndarray) -> CondMoments:
        m = Moments.of(rows)
        return CondMoments(m.n, m.mean, m.ss)

    raw = Stats(cols, Moments.of(x), np.full(4, 400.0), ["a", "b", "c"],
                {n: block(x[x[:, j] == 1]) for j, n in enumerate(cols) if j})

    kept, notes = protect(raw, 10)

    assert list(kept.cond) == ["a", "b", "c"] and notes == []
    assert not np.isnan(kept.total.m2).any()  # every pair's four cells hold >= 10 rows
    for blk in kept.cond.values():  # per column only: a∧b∧c is never described
        assert blk.mean.shape == blk.ss.shape == (4,) and not np.isnan(blk.mean).any()


def test_statistics_whose_memory_would_exceed_the_policy_are_refused(data, tmp_path) -> None:
    path, _ = data
    info = registered(path)
    ctx = StepContext("task", 1, policy={"data": {"min_count": 10, "max_statistics_mb": 1e-3}},
                      cache_dir=tmp_path)

    with pytest.raises(PermissionDenied, match=r"need about \d+ MB, more than the 0 MB"):
        compute(ctx, {"data": LoadedDataset(info, None, path)},
                {"data_config": {}, "model_config": {}, "dataset": "silo"}, {})
