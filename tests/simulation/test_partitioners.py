"""Partitioners: disjoint, complete, deterministic by seed; Dirichlet skew follows alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jupyter_fed.errors import ConfigError
from jupyter_fed.simulation import Partitioning, partition


def _labels(n: int = 6000, classes: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, n)


def _check_cover(parts: list[np.ndarray], n: int) -> None:
    rows = np.concatenate(parts)
    assert len(rows) == n and len(np.unique(rows)) == n  # disjoint and complete


@pytest.mark.parametrize("scheme", ["iid", "dirichlet:0.5", "dirichlet:5"])
def test_partitions_are_disjoint_complete_and_deterministic(scheme: str) -> None:
    # Prepare
    labels = _labels()

    # Execute
    a = partition(labels, 10, scheme, seed=4)
    b = partition(labels, 10, scheme, seed=4)
    c = partition(labels, 10, scheme, seed=5)

    # Assert
    _check_cover(a, len(labels))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_iid_gives_near_equal_sizes_and_class_shares() -> None:
    labels = _labels()

    parts = partition(labels, 8, "iid", seed=1)

    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    shares = np.array([np.bincount(labels[p], minlength=3) / len(p) for p in parts])
    assert np.abs(shares - shares.mean(0)).max() < 0.06


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    # Prepare: the spread of each client's class shares around the global share
    labels = _labels(20_000)
    overall = np.bincount(labels) / len(labels)

    def skew(alpha: float) -> float:
        parts = partition(labels, 20, f"dirichlet:{alpha}", seed=2, min_rows=1)
        shares = np.array([np.bincount(labels[p], minlength=3) / max(len(p), 1) for p in parts])
        return float(np.abs(shares - overall).mean())

    # Execute
    low, mid, high = skew(0.1), skew(1.0), skew(100.0)

    # Assert: small alpha, few classes per client; large alpha, close to IID
    assert low > mid > high
    assert high < 0.03 and low > 0.25


def test_dirichlet_class_proportions_match_the_drawn_shares() -> None:
    # Each class's rows are split by its own Dirichlet draw: with one client per class sharing
    # nothing, the expected share of a class at a client is 1/num_clients.
    labels = _labels(30_000, classes=2)
    per_client = []
    for seed in range(20):
        parts = partition(labels, 4, "dirichlet:1.0", seed=seed)
        per_client.append([np.mean(labels[p] == 1) * len(p) / np.sum(labels == 1)
                           for p in parts])
    assert np.allclose(np.mean(per_client, axis=0), 0.25, atol=0.08)


def test_dirichlet_redraws_until_every_client_has_min_rows() -> None:
    labels = _labels(2000)

    parts = partition(labels, 10, "dirichlet:0.3", seed=0, min_rows=50)

    assert min(map(len, parts)) >= 50
    with pytest.raises(ConfigError, match="raise alpha"):
        partition(labels, 50, "dirichlet:0.01", seed=0, min_rows=39, max_tries=3)


def test_column_partition_gives_one_client_per_value() -> None:
    frame = pd.DataFrame({"site": [2, 1, 2, 3, 1, 3, 3], "x": range(7)})

    parts = partition(frame, None, "column:site")

    assert [p.tolist() for p in parts] == [[1, 4], [0, 2], [3, 5, 6]]
    with pytest.raises(ConfigError, match="3 distinct values"):
        partition(frame, 2, "column:site")


def test_dirichlet_on_a_frame_reads_the_label_column() -> None:
    frame = pd.DataFrame({"y": _labels(500, 2), "x": np.arange(500.0)})

    parts = partition(frame, 5, "dirichlet:0.5", label="y", seed=3)

    _check_cover(parts, 500)
    with pytest.raises(ConfigError, match="label"):
        partition(frame, 5, "dirichlet:0.5")


@pytest.mark.parametrize("text", ["dirichlet:0", "dirichlet:x", "column:", "zipf", "iid:2"])
def test_bad_schemes_are_refused_with_the_forms_accepted(text: str) -> None:
    with pytest.raises(ConfigError):
        Partitioning.parse(text)


def test_schemes_round_trip_as_text() -> None:
    assert str(Partitioning.parse("Dirichlet:0.50")) == "dirichlet:0.5"
    assert str(Partitioning.parse("dirichlet")) == "dirichlet:0.5"
    assert str(Partitioning.parse("column:site")) == "column:site"
