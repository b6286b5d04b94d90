"""EDA's exact aggregates (before noise) do not depend on batching; its releases carry noise,
explain what they withhold, and keep to the epsilon they were granted."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyter_fed.packages.base import StepContext
from jupyter_fed.packages.eda import local
from jupyter_fed.packages.eda._scan import ColumnSpec, scan
from jupyter_fed.privacy.suppression import suppress_small
from jupyter_fed.runner.data import LoadedDataset, inspect


def test_small_noisy_counts_are_suppressed_and_counted() -> None:
    counts, hidden = suppress_small(np.array([-2, 0, 3, 9, 10, 50]), 10)
    assert counts.tolist() == [0, 0, 0, 0, 10, 50] and hidden == 2


class _Batched(LoadedDataset):
    """The runner's dataset handle, streaming in batches of a chosen size."""

    def __init__(self, info, table, rows: int) -> None:
        super().__init__(info, table)
        self.rows = rows

    def iter_batches(self, columns, batch_rows=65_536):
        full = self.to_numpy(columns, np.float64)
        for i in range(0, len(full), self.rows):
            yield full[i:i + self.rows]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("eda") / "d.parquet"
    pq.write_table(pa.table({"a": rng.normal(5, 2, 30_000), "b": rng.integers(0, 4, 30_000)}),
                   path)
    return inspect("d", path), pq.read_table(path)


@pytest.mark.parametrize("rows", [1, 997, 30_000])
def test_aggregates_do_not_depend_on_the_batch_size(dataset, rows: int) -> None:
    info, table = dataset
    specs = [ColumnSpec("numeric", None), ColumnSpec("categorical")]
    binned = [ColumnSpec("numeric", (0.0, 10.0), 20), ColumnSpec("categorical")]
    if rows == 1:  # one row a block is slow; a prefix shows the same
        table = table.slice(0, 3000)
        info = info.model_copy(update={"num_rows": 3000})
    one = _Batched(info, table, len(table))
    many = _Batched(info, table, rows)

    for s in (specs, binned):
        a = scan(StepContext("t", 1), one, ["a", "b"], s, 5000)
        b = scan(StepContext("t", 1), many, ["a", "b"], s, 5000)
        assert a["b"].values == b["b"].values
        for name in ("grid", "hist"):
            x, y = getattr(a["a"], name), getattr(b["a"], name)
            assert (x is None and y is None) or np.array_equal(x, y)
        np.testing.assert_array_equal(a["a"].prefix_values, b["a"].prefix_values)
        if a["a"].sums is not None:
            np.testing.assert_allclose(a["a"].sums, b["a"].sums, rtol=1e-9)


def test_a_label_column_is_categorical_and_an_integer_one_only_when_asked(dataset) -> None:
    info, table = dataset
    handle = LoadedDataset(info, table)
    params = {"model_config": {"epsilon": 4.0}, "data_config": {}, "dataset": "d"}

    out = local.compute(StepContext("t", 1), {"data": handle}, params, {}).outputs["columns"]

    assert [c.kind for c in info.columns] == ["numeric", "label"]
    assert out["b"]["kind"] == "categorical" and out["b"]["values"] == [0.0, 1.0, 2.0, 3.0]
    assert out["a"]["kind"] == "numeric" and out["a"]["bounds"] == "private"
    assert abs(out["a"]["center"] + out["a"]["sum"] / out["a"]["n"] - 5.0) < 0.1


def test_the_step_never_spends_more_than_its_grant(dataset) -> None:
    info, table = dataset
    ctx = StepContext("t", 1, policy={"data": {"grant": {"epsilon": 1.0, "delta": 1e-9}}})
    params = {"model_config": {"epsilon": 2.0}, "data_config": {}, "dataset": "d"}

    with pytest.raises(RuntimeError, match="more epsilon than the runner debited"):
        local.compute(ctx, {"data": LoadedDataset(info, table)}, params, {})


def test_too_few_rows_for_private_bounds_says_so(tmp_path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "small.parquet"
    pq.write_table(pa.table({f"c{i}": rng.uniform(113, 282, 225) for i in range(31)}), path)
    info = inspect("small", path)
    params = {"model_config": {"epsilon": 1.0}, "data_config": {}, "dataset": "small"}

    result = local.compute(StepContext("t", 1), {"data": LoadedDataset(info, None, path)}, params,
                           {})

    cols = result.outputs["columns"]
    assert all(c["withheld"].startswith("not enough rows for private bounds") for c in cols.values())
    assert result.outputs["withheld"] == [f"c{i}" for i in range(31)]
    assert "split over 31 column(s)" in result.outputs["warnings"][0]
