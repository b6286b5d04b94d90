"""DP noise is present and calibrated; suppression; EDA is independent of batch size."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from jupyter_fed.packages.base import StepContext
from jupyter_fed.packages.eda import local
from jupyter_fed.privacy.mechanisms import gaussian_sigma, noisy_counts, suppress_small
from jupyter_fed.runner.data import LoadedDataset, inspect


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_laplace_noise_has_the_calibrated_scale(epsilon: float) -> None:
    from scipy import stats

    rng = np.random.default_rng(7)
    true = np.full(20_000, 1000.0)

    noise = noisy_counts(true, epsilon, "laplace", rng) - true

    assert noise.std() > 0  # present
    # the rounded Laplace law: P(j) = F(j + 1/2) - F(j - 1/2); its variance, then a chi-square fit
    law = stats.laplace(scale=1 / epsilon)
    j = np.arange(-200, 201)
    p = law.cdf(j + 0.5) - law.cdf(j - 0.5)
    assert noise.var() == pytest.approx((p * j**2).sum(), rel=0.05)
    support = np.arange(-int(6 / epsilon), int(6 / epsilon) + 1)
    expected = (law.cdf(support + 0.5) - law.cdf(support - 0.5)) * len(noise)
    observed = np.array([(noise == j).sum() for j in support])
    inside = observed.sum()
    assert stats.chisquare(observed, expected * inside / expected.sum()).pvalue > 1e-3


def test_gaussian_noise_has_the_calibrated_sigma() -> None:
    rng = np.random.default_rng(8)
    sigma = gaussian_sigma(1.0, 1e-6)
    noise = noisy_counts(np.full(20_000, 1e4), 1.0, "gaussian", rng, 1e-6) - 1e4
    assert sigma == pytest.approx(math.sqrt(2 * math.log(1.25e6)))
    assert noise.std() == pytest.approx(sigma, rel=0.05)


def test_small_counts_are_suppressed_and_counted() -> None:
    counts, hidden = suppress_small(np.array([0, 3, 9, 10, 50]), 10)
    assert counts.tolist() == [0, 0, 0, 10, 50] and hidden == 2


class _Batched(LoadedDataset):
    """The runner's dataset handle, streaming in batches of a chosen size."""

    def __init__(self, info, table, rows: int) -> None:
        super().__init__(info, table)
        self.rows = rows

    def iter_batches(self, columns, batch_rows=65_536):
        full = self.to_numpy(columns, np.float64)
        for i in range(0, len(full), self.rows):
            yield full[i:i + self.rows]


def _run(tmp_path, rows: int, monkeypatch) -> dict:
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    path = tmp_path / "d.parquet"
    if not path.exists():
        pq.write_table(pa.table({"a": rng.normal(5, 2, 30_000), "b": rng.integers(0, 4, 30_000)}),
                       path)
    info = inspect("d", path)
    handle = _Batched(info, pq.read_table(path), rows)
    monkeypatch.setattr(local.secrets, "randbits", lambda n: 12345)  # same noise stream
    params = {"model_config": {"epsilon": 1.0, "bounds_rows": 5000}, "data_config": {},
              "dataset": "d"}
    return local.compute(StepContext("t", 1), {"data": handle}, params, {}).outputs["columns"]


def test_many_small_batches_give_the_same_histograms_as_one(tmp_path, monkeypatch) -> None:
    one = _run(tmp_path, 30_000, monkeypatch)
    many = _run(tmp_path, 997, monkeypatch)
    assert one == many
    assert one["b"]["kind"] == "categorical" and one["a"]["kind"] == "numeric"
