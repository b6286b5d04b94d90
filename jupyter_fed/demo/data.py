"""Deterministic synthetic silos like the reference tutorial: features x0…x14, binary target y.

The target depends on the features through a nonlinear score (products and a threshold), so a
linear model does noticeably worse than a small MLP; silos differ slightly in their feature
distributions, as real ones do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FEATURES = [f"x{i}" for i in range(15)]
TARGET = "y"


def _rows(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    x = rng.normal(0.0, 1.0, size=(n, 15))
    x[:, :5] += shift
    score = (1.2 * x[:, 0] - 0.9 * x[:, 1] + 0.8 * x[:, 2] * x[:, 3] - 0.7 * np.abs(x[:, 4])
             + 0.6 * np.sin(2.0 * x[:, 5]) + 0.5 * x[:, 6] - 0.3 * x[:, 7] + 0.4)
    p = 1.0 / (1.0 + np.exp(-1.5 * score))
    y = (rng.random(n) < p).astype(np.int64)
    cols = {name: x[:, i] for i, name in enumerate(FEATURES)}
    cols[TARGET] = y
    return cols


def write_silos(folder: Path, rows: int = 20_000, clients: int = 2, test_rows: int | None = None,
                seed: int = 7) -> dict[str, Path]:
    """Write ``train_silo{i}.parquet`` (``rows`` each) and ``test.parquet``; return name → path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, Path] = {}
    for i in range(clients):
        path = folder / f"train_silo{i}.parquet"
        pq.write_table(pa.table(_rows(rng, rows, shift=0.15 * (i - (clients - 1) / 2))), path)
        out[f"train_silo{i}"] = path
    path = folder / "test.parquet"
    pq.write_table(pa.table(_rows(rng, test_rows or max(1000, rows // 5), shift=0.0)), path)
    out["test"] = path
    return out


def write_vertical(folder: Path, rows: int = 2_000, parties: int = 2, overlap: float = 0.9,
                   test_rows: int | None = None, seed: int = 11) -> dict[str, dict[str, Path]]:
    """Vertically split silos: the same people in different hands, with different columns.

    Each party ``p`` gets ``party{p}_train.parquet`` (``rows`` rows) and ``party{p}_test.parquet``
    with a ``patient_id`` column (``P0000042``; register it with ``--id-column``) and its share
    of the features ``x0…x14`` (contiguous blocks); the last party also holds the target ``y``.
    A share ``overlap`` of every party's rows are people all parties hold; the rest are its own.
    Rows are shuffled per party, so linkage — not row order — says who is who.

    Returns party name → {"train": path, "test": path}.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blocks = np.array_split(np.arange(len(FEATURES)), parties)
    out: dict[str, dict[str, Path]] = {f"party{p}": {} for p in range(parties)}
    start = 0
    for role, n in (("train", rows), ("test", test_rows or max(200, rows // 5))):
        common = round(overlap * n)
        people = common + parties * (n - common)
        data = _rows(rng, people, shift=0.0)
        ids = np.array([f"P{start + i:07d}" for i in range(people)])
        start += people
        for p in range(parties):
            own = np.r_[np.arange(common), common + p * (n - common) + np.arange(n - common)]
            own = rng.permutation(own)
            cols = {"patient_id": ids[own]}
            cols.update({FEATURES[j]: data[FEATURES[j]][own] for j in blocks[p]})
            if p == parties - 1:
                cols[TARGET] = data[TARGET][own]
            path = folder / f"party{p}_{role}.parquet"
            pq.write_table(pa.table(cols), path)
            out[f"party{p}"][role] = path
    return out


CONSUMER_FEATURES = ["c0", "c1", "c2"]
PROVIDER_FEATURES = ["p0", "p1", "p2", "p3", "p4"]
PROVIDER_KINDS = ("signal", "noise")


def _evaluation_rows(rng: np.random.Generator, n: int, provider: str
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One population: the consumer's columns and label, and the provider's columns."""
    c = rng.normal(0.0, 1.0, size=(n, len(CONSUMER_FEATURES)))
    p = rng.normal(0.0, 1.0, size=(n, len(PROVIDER_FEATURES)))
    score = 0.7 * c[:, 0] - 0.5 * c[:, 1] + 0.3 * c[:, 2]
    if provider == "signal":  # p0…p2 carry signal the consumer's own columns do not; p3, p4 none
        score = score + 1.1 * p[:, 0] - 0.9 * p[:, 1] + 0.6 * p[:, 2]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-score))).astype(np.int64)
    consumer = {name: c[:, j] for j, name in enumerate(CONSUMER_FEATURES)}
    consumer[TARGET] = y
    return consumer, {name: p[:, j] for j, name in enumerate(PROVIDER_FEATURES)}


def write_evaluation(folder: Path, provider: str = "signal", rows: int = 2_000,
                     overlap: float = 0.7, test_rows: int | None = None, seed: int = 5
                     ) -> dict[str, dict[str, Path]]:
    """A data consumer and a data provider, for the evaluation template notebook.

    The consumer gets ``consumer_{train,test}.parquet`` (``rows`` training rows) with ids in
    ``customer_id``, its own columns ``c0…c2`` and the label ``y``; the provider gets
    ``provider_{train,test}.parquet`` with ids in ``person_id`` (the same people's ids, in the
    provider's own column) and its columns ``p0…p4``. The provider holds as many rows as the
    consumer; a share ``overlap`` of them are the consumer's people, the rest its own.
    With ``provider="signal"`` the label depends on ``p0…p2`` as well as on the consumer's
    columns; with ``provider="noise"`` the provider's columns are independent of everything.
    Rows are shuffled per party, so linkage — not row order — says who is who.

    Returns party name → {"train": path, "test": path}.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if provider not in PROVIDER_KINDS:
        raise ValueError(f"provider must be one of {', '.join(PROVIDER_KINDS)}, not {provider!r}")
    if not 0.0 < overlap <= 1.0:
        raise ValueError(f"overlap must be in (0, 1], not {overlap}")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, Path]] = {"consumer": {}, "provider": {}}
    start = 0
    for role, n in (("train", rows), ("test", test_rows or max(300, rows // 3))):
        common = round(overlap * n)
        people = n + (n - common)  # the consumer's, then the provider's own
        consumer, provider_cols = _evaluation_rows(rng, people, provider)
        ids = np.array([f"C{start + i:07d}" for i in range(people)])
        start += people
        mine = rng.permutation(n)
        theirs = rng.permutation(np.r_[np.arange(common), n + np.arange(n - common)])
        tables = {
            "consumer": {"customer_id": ids[mine], **{k: v[mine] for k, v in consumer.items()}},
            "provider": {"person_id": ids[theirs],
                         **{k: v[theirs] for k, v in provider_cols.items()}},
        }
        for party, cols in tables.items():
            path = folder / f"{party}_{role}.parquet"
            pq.write_table(pa.table(cols), path)
            out[party][role] = path
    return out
