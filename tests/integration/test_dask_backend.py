"""Datasets read by Dask (``backend: dask``) give what the default reader gives, partials only.

In-process: the runner's registry and store, ``LoadedDataset`` built as the executor builds it,
and the packages' exact aggregates (what the noise is added to; OpenDP's noise cannot be
pinned). End to end: a runner process with the same file
registered twice, once for each backend, answering a stats and an EDA session.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

pytest.importorskip("distributed")
# dask's parquet reader calls a pandas API that pandas 3.1 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")

from jupyter_fed.contracts import parse_filter  # noqa: E402
from jupyter_fed.packages.base import StepContext  # noqa: E402
from jupyter_fed.packages.eda._scan import ColumnSpec  # noqa: E402
from jupyter_fed.packages.eda._scan import scan as eda_scan  # noqa: E402
from jupyter_fed.packages.stats._moments import Stats  # noqa: E402
from jupyter_fed.packages.stats._scan import scan  # noqa: E402
from jupyter_fed.packages.stats.local import compute as stats_compute  # noqa: E402
from jupyter_fed.runner import dask_backend  # noqa: E402
from jupyter_fed.runner.data import LoadedDataset  # noqa: E402
from jupyter_fed.runner.process import init_runner  # noqa: E402
from jupyter_fed.runner.registry import register_dataset  # noqa: E402
from jupyter_fed.runner.store import RunnerStore  # noqa: E402
from jupyter_fed.wire import DatasetInfo, DatasetRegistration  # noqa: E402
from jupyter_fed.wire.models import DatasetBackend  # noqa: E402

ROWS = 6000
ONE_PARTITION = "1GB"
MANY_PARTITIONS = 8192  # bytes: dozens of partitions of a few hundred rows


def table(rows: int = ROWS, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"a": rng.normal(50, 12, rows), "b": rng.integers(0, 4, rows),
                     "c": rng.random(rows) < 0.3, "e": rng.integers(0, 5000, rows),
                     "y": (rng.random(rows) < 0.4).astype(np.int64)})


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A runner's settings and store, the data written as parquet and csv under its root."""
    root = tmp_path_factory.mktemp("dask-data")
    data = table()
    pq.write_table(data, root / "d.parquet", row_group_size=250)
    pacsv.write_csv(data, root / "d.csv")
    settings, _ = init_runner(tmp_path_factory.mktemp("dask-runner"), "r", [root])
    store = RunnerStore(settings.db_path)
    yield settings, store, root
    store.close()
    dask_backend.close_clients()


def handle(runner: Any, fmt: str, backend: dict[str, Any] | str | None) -> LoadedDataset:
    """Register the file (once per backend) and open it as the executor does, from the store."""
    settings, store, root = runner
    name = f"d_{fmt}_{abs(hash(str(backend))) % 10**8}"
    if store.get_dataset(name) is None:
        register_dataset(settings, store, DatasetRegistration(
            name=name, path=str(root / f"d.{fmt}"), backend=backend))
    path, info = store.get_dataset(name)
    return LoadedDataset(DatasetInfo.model_validate(info), None, Path(path))


EDA_SPECS = [ColumnSpec("numeric", None), ColumnSpec("categorical"), ColumnSpec("categorical"),
             ColumnSpec("numeric", (0.0, 5000.0), 12), ColumnSpec("categorical")]


def eda(h: LoadedDataset, monkeypatch: pytest.MonkeyPatch, bounds_rows: int = 1000
        ) -> dict[str, Any]:
    """EDA's exact aggregates of every column (pass 1, then pass 2 under fixed bounds)."""
    ctx = StepContext("t", 1)
    cols = ["a", "b", "c", "e", "y"]
    first = eda_scan(ctx, h, cols, EDA_SPECS, bounds_rows)
    second = eda_scan(ctx, h, ["a"], [ColumnSpec("numeric", (20.0, 80.0), 12)], bounds_rows)
    out: dict[str, Any] = {}
    for c, part in [*first.items(), ("a_binned", second["a"])]:
        out[c] = {"values": part.values, "prefix": part.prefix_values.tolist(),
                  **{k: None if getattr(part, k) is None else np.round(getattr(part, k), 6).tolist()
                     for k in ("grid", "hist", "sums")}}
    return out


def stats(h: LoadedDataset, cache: Path, **data: Any) -> Stats:
    shutil.rmtree(cache, ignore_errors=True)  # no answer from an earlier query's cache
    ctx = StepContext("t", 1, policy={"data": {"min_count": 10}}, cache_dir=cache, principal="p")
    result = stats_compute(ctx, {"data": h}, {"data_config": data, "model_config": {},
                                              "dataset": h.info.name}, {})
    return Stats.from_tensors(result.tensors, result.outputs)


def assert_same_stats(a: Stats, b: Stats) -> None:
    assert (a.columns, a.binary, list(a.cond), a.total.n) == (b.columns, b.binary, list(b.cond),
                                                              b.total.n)
    for x, y in [(a.total, b.total), *((a.cond[k], b.cond[k]) for k in a.cond)]:
        assert x.n == y.n
        np.testing.assert_allclose(y.mean, x.mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(y.ss, x.ss, rtol=1e-9, atol=1e-9 * np.abs(x.ss).max())
    np.testing.assert_allclose(b.total.m2, a.total.m2, rtol=1e-9,
                               atol=1e-9 * np.abs(a.total.m2).max())


def test_the_backend_is_stored_but_never_in_the_catalog(runner: Any) -> None:
    h = handle(runner, "parquet", {"name": "dask", "blocksize": MANY_PARTITIONS})
    _, store, _ = runner

    assert h.partitioned and h.info.backend == DatasetBackend(name="dask", blocksize=MANY_PARTITIONS)
    listed = store.list_datasets()
    assert any(d.get("backend") for d in listed)  # the runner keeps it ...
    catalog = [DatasetInfo.model_validate(d).model_dump_json() for d in listed]
    assert not any("backend" in c or "dask" in c for c in catalog)  # ... the catalog does not show it
    assert not handle(runner, "parquet", None).partitioned
    assert not handle(runner, "parquet", "pyarrow").partitioned


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("bounds_rows", [1000, 200_000])  # bounds set mid-pass, or at the end
def test_eda_histograms_and_noise_are_those_of_the_default_reader(
        runner: Any, monkeypatch: pytest.MonkeyPatch, fmt: str, bounds_rows: int) -> None:
    plain = eda(handle(runner, fmt, None), monkeypatch, bounds_rows=bounds_rows)
    by_dask = eda(handle(runner, fmt, {"name": "dask", "blocksize": MANY_PARTITIONS}), monkeypatch,
                  bounds_rows=bounds_rows)

    assert by_dask == plain
    assert plain["b"]["values"] and plain["a"]["grid"] and plain["e"]["hist"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_stats_equal_those_of_the_default_reader(runner: Any, tmp_path: Path, fmt: str) -> None:
    query = {"columns": ["a", "b", "c", "e", "y"]}
    plain_h = handle(runner, fmt, None)
    dask_h = handle(runner, fmt, {"name": "dask", "blocksize": MANY_PARTITIONS})

    assert_same_stats(stats(plain_h, tmp_path / "a", **query), stats(dask_h, tmp_path / "b", **query))
    # the row sets behind the differencing check are the same bits, filtered or not
    ctx = StepContext("t", 1)
    cols = query["columns"]
    one = scan(ctx, plain_h, cols, None, ["c", "y"], 997)
    other = scan(ctx, dask_h, cols, None, ["c", "y"], 997)
    assert np.array_equal(one.rows, other.rows)
    where = parse_filter("a > 40 AND e < 4500")
    assert_same_stats(scan(ctx, plain_h, cols, where, ["c", "y"], 997).stats,
                      scan(ctx, dask_h, cols, where, ["c", "y"], 997).stats)
    assert one.cond_rows.keys() == other.cond_rows.keys() == {"c", "y"}
    assert all(np.array_equal(one.cond_rows[k], other.cond_rows[k]) for k in one.cond_rows)


def test_many_small_partitions_equal_one(runner: Any, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    one = handle(runner, "parquet", {"name": "dask", "blocksize": ONE_PARTITION})
    many = handle(runner, "parquet", {"name": "dask", "blocksize": MANY_PARTITIONS})
    parts = [dask_backend.frame(h.path, "parquet", ["a"], {}, h.info.backend).npartitions
             for h in (one, many)]

    assert parts[0] == 1 and parts[1] >= 10
    assert eda(one, monkeypatch, bounds_rows=1000) == eda(many, monkeypatch, bounds_rows=1000)
    assert_same_stats(stats(one, tmp_path / "a"), stats(many, tmp_path / "b"))
    blocks = [np.concatenate(list(h.iter_batches(["a", "c", "e"], 777))) for h in (one, many)]
    assert np.array_equal(blocks[0], blocks[1])


def test_streamed_blocks_are_those_of_the_default_reader(runner: Any) -> None:
    for fmt in ("parquet", "csv"):
        plain = list(handle(runner, fmt, None).iter_batches(["a", "b", "c"], 1000))
        by_dask = list(handle(runner, fmt, {"name": "dask", "blocksize": MANY_PARTITIONS})
                       .iter_batches(["a", "b", "c"], 1000))
        assert [len(b) for b in by_dask] == [len(b) for b in plain] == [1000] * 6
        assert all(np.array_equal(x, y) for x, y in zip(plain, by_dask, strict=True))


@pytest.mark.parametrize(("backend", "message"), [
    ({"name": "spark"}, "Input should be 'pyarrow' or 'dask'"),
    ({"name": "dask", "scheduler": "http://x:1"}, "tcp://host:port"),
    ({"name": "dask", "blocksize": "lots"}, "size such as '64MB'"),
])
def test_bad_backends_are_refused_with_the_field(backend: dict[str, Any], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="backend") as err:
        DatasetRegistration(name="d", path="d.parquet", backend=backend)
    assert message in str(err.value)


def test_a_runner_serves_sessions_on_a_dask_dataset(tmp_path: Path) -> None:
    """A runner process: register over REST, the catalog stays clean, sessions run on Dask."""
    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation

    root = tmp_path / "data"
    root.mkdir()
    pq.write_table(table(), root / "d.parquet", row_group_size=500)
    with LocalFederation(tmp_path / "runners", {"silo": {"plain": root / "d.parquet"}},
                         root) as fed, fed.processes["silo"].http(timeout=60) as admin:
        # registering a Dask dataset imports dask and reads the schema: seconds on a busy machine
        resp = admin.post("/v1/datasets", json={"name": "big", "path": str(root / "d.parquet"),
                                                "backend": {"name": "dask", "blocksize": 20_000}})
        assert resp.status_code == 201, resp.text
        listed = admin.get("/v1/datasets").json()
        assert {d["name"] for d in listed} == {"plain", "big"}
        assert not any("backend" in d for d in listed) and "dask" not in admin.get(
            "/v1/datasets/big").text

        with jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coord",
                                 runners=fed.runners) as client:
            def run(package: str, **kw: Any) -> Any:
                session = client.create_analytics_session(package, package, **kw).start()
                group = SessionTaskGroup(session)
                for name in kw["data_config"]:
                    group.add_task(client.task_builder().eda(name))
                group.start().wait(90)
                return session.results()

            merged = run("stats", data_config={"plain": ["a", "e", "y"], "big": ["a", "e", "y"]})
            eda_results = run("eda", data_config={"big": ["a", "b"]}, model_config={"epsilon": 1})
    for fn in ("mean", "stddev", "count"):
        for col in ("a", "e", "y"):
            assert getattr(merged.peer("big"), fn)(col) == pytest.approx(
                getattr(merged.peer("plain"), fn)(col), rel=1e-9)
    assert merged.n == 2 * ROWS
    column = eda_results["big"]["a"]
    assert column.kind == "numeric" and column.count() == pytest.approx(ROWS, rel=0.05)
    assert eda_results["big"]["b"].uniques() == [0.0, 1.0, 2.0, 3.0]
