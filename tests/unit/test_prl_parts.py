"""Private record linkage in one process: normalisation, tokens, matching, the plan, aligned rows.

The plan runs against its own runner steps through ``plan_harness.LocalIO`` (no network) on
parquet files with known overlaps; tests/integration/test_prl.py runs the same through real
runners and the real engine.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from plan_harness import run_plan

from jupyter_fed.errors import ConfigError, FedError, PermissionDenied
from jupyter_fed.packages.alignment import load_alignment
from jupyter_fed.packages.prl._bloom import bloom_filters, dice
from jupyter_fed.packages.prl._crypto import hmac_tokens
from jupyter_fed.packages.prl._encode import first_of_each
from jupyter_fed.packages.prl._match import fuzzy_match, intersect
from jupyter_fed.packages.prl._normalise import combine, normalise
from jupyter_fed.packages.prl.config import parse
from jupyter_fed.runner.aligned import AlignmentScope
from jupyter_fed.runner.data import LoadedDataset, inspect

PRINCIPAL = "local-user"


def handle(folder: Path, name: str, frame: pd.DataFrame, ids: list[str], cache: Path
           ) -> LoadedDataset:
    path = folder / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return LoadedDataset(inspect(name, path, ids), None, path,
                         alignments=AlignmentScope(cache, PRINCIPAL))


# -- normalisation and tokens -----------------------------------------------------------------
@pytest.mark.parametrize(("raw", "steps", "want"), [
    ("  Alice  ", ["trim"], "Alice"),
    ("STRASSE", ["casefold"], "strasse"),
    ("Straße", ["casefold"], "strasse"),
    ("ＩＤ１２", ["nfkc", "casefold"], "id12"),
    ("+1 (555) 010-0199", ["digits"], "15550100199"),
    ("Mary   Ann\tLee", ["collapse"], "Mary Ann Lee"),
    (" x ", [], " x "),
])
def test_each_normalisation_step(raw: str, steps: list[str], want: str) -> None:
    assert normalise(pa.array([raw]), steps).to_pylist() == [want]


def test_combined_ids_are_unambiguous() -> None:
    a = combine([pa.array(["ab", "a"]), pa.array(["c", "bc"])]).to_pylist()

    assert a[0] != a[1]


def test_tokens_are_hmac_sha256_truncated() -> None:
    key, messages = os.urandom(32), [b"", b"x", "é".encode(), os.urandom(300)]

    got = hmac_tokens(key, messages)

    assert got.shape == (4, 16) and got.dtype == np.uint8
    for row, m in zip(got, messages, strict=True):
        assert bytes(row) == hmac.new(key, m, "sha256").digest()[:16]


def test_duplicates_keep_their_first_row_and_come_out_sorted() -> None:
    tokens = hmac_tokens(b"k", [b"b", b"a", b"b", b"c", b"a"])
    rows = np.array([10, 11, 12, 13, 14])

    keep = first_of_each(tokens, rows)

    assert sorted(rows[keep].tolist()) == [10, 11, 13]
    keys = tokens[keep].view("S16").ravel()
    assert (keys[1:] > keys[:-1]).all()


def test_intersection_of_three_parties_in_one_shared_order() -> None:
    make = lambda ids: np.sort(hmac_tokens(b"k", [i.encode() for i in ids]).view("S16").ravel()  # noqa: E731
                               ).view(np.uint8).reshape(-1, 16)
    a, b, c = make(["1", "2", "3", "4"]), make(["2", "3", "4", "5"]), make(["0", "3", "4", "2"])

    pos = intersect([a, b, c])

    assert [len(p) for p in pos] == [3, 3, 3]
    assert all((a[pos[0]] == x[p]).all() for x, p in ((b, pos[1]), (c, pos[2])))


# -- fuzzy ------------------------------------------------------------------------------------
def test_dice_is_high_for_a_typo_and_low_for_another_name() -> None:
    key = os.urandom(32)
    f = bloom_filters([("jonathan smith",), ("jonathon smith",), ("maria garcia",)], key,
                      1024, 20, 2)

    score = dice(f, f, np.array([0, 0]), np.array([1, 2]))

    assert score[0] > 0.8 > 0.3 > score[1]


def test_fuzzy_match_links_one_to_one_above_the_threshold() -> None:
    key = os.urandom(32)
    a = bloom_filters([("anna lee",), ("bob stone",), ("carl jung",)], key, 1024, 20, 2)
    b = bloom_filters([("ana lee",), ("bob stone",), ("zed quix",)], key, 1024, 20, 2)
    block = np.zeros((3, 16), np.uint8)  # one block: every pair is compared

    ia, ib = fuzzy_match([block, block], [a, b], 0.75, 100)

    assert list(zip(ia.tolist(), ib.tolist(), strict=True)) == [(0, 0), (1, 1)]


# -- the plan end to end, in this process ------------------------------------------------------
def parties(folder: Path, cache: Path) -> dict[str, dict[str, LoadedDataset]]:
    """A: ids P0000…P0299 (+ two duplicates, two blanks); B: P0100…P0449 written differently.

    Known: train overlap 200 (P0100…P0299); A's test P0500…P0539 vs B's P0520…P0559: 20.
    """
    rng = np.random.default_rng(0)
    a_ids = [f"P{i:04d}" for i in range(300)] + ["P0005", "P0150", "", "   "]
    b_ids = [f"  p{i:04d} " for i in range(100, 450)]
    a = pd.DataFrame({"pid": a_ids, "x0": rng.normal(size=len(a_ids))})
    b = pd.DataFrame({"patient": b_ids, "y": rng.integers(0, 2, len(b_ids))})
    at = pd.DataFrame({"pid": [f"P{i:04d}" for i in range(500, 540)], "x0": np.arange(40.0)})
    bt = pd.DataFrame({"patient": [f"p{i:04d}" for i in range(520, 560)], "y": np.arange(40)})
    return {"a": {"train": handle(folder, "a_train", a, ["pid"], cache),
                  "test": handle(folder, "a_test", at, ["pid"], cache)},
            "b": {"train": handle(folder, "b_train", b, ["patient"], cache),
                  "test": handle(folder, "b_test", bt, ["patient"], cache)}}


CONFIG = {"clients": {"a": {"id_columns": ["pid"], "normalise": ["trim", "casefold"]},
                      "b": {"id_columns": ["patient"], "normalise": {"patient": ["trim", "casefold"]}}}}


@pytest.mark.parametrize("protocol", ["keyed_hash", "psi"])
def test_exact_counts_and_aligned_rows_equal_a_pandas_merge(tmp_path: Path, protocol: str) -> None:
    if protocol == "psi":
        pytest.importorskip("private_set_intersection")
    cache = tmp_path / "cache"
    clients = parties(tmp_path, cache)

    io = run_plan("prl", {}, {**CONFIG, "protocol": protocol}, clients, cache_dir=cache)

    metrics = io.metrics[0]
    assert metrics.model_round is None and metrics.federated == {}
    assert metrics.per_client["a"]["train"] == {"n_records": 304, "n_overlapped_records": 200,
                                                "frac_overlapped": round(200 / 304, 4)}
    assert metrics.per_client["b"]["train"]["n_overlapped_records"] == 200
    assert metrics.per_client["b"]["test"] == {"n_records": 40, "n_overlapped_records": 20,
                                               "frac_overlapped": 0.5}
    result = io.model()
    assert result.counts["a"]["train"] == {"n_records": 304, "n_missing": 2, "n_duplicates": 2,
                                           "n_sent": 300}
    for role in ("train", "test"):
        left = clients["a"][role].aligned("local").to_pandas()
        right = clients["b"][role].aligned("local").to_pandas()
        assert len(left) == len(right) == (200 if role == "train" else 20)
        assert (left["pid"].str.strip().str.casefold()
                == right["patient"].str.strip().str.casefold()).all()
        truth = clients["a"][role].to_pandas().assign(key=lambda d: d.pid.str.strip().str.lower())
        truth = truth[truth.key != ""].drop_duplicates("key").merge(
            clients["b"][role].to_pandas().assign(key=lambda d: d.patient.str.strip().str.lower()),
            on="key")
        assert sorted(truth["key"]) == sorted(left["pid"].str.lower())
    first_row_of_dup = clients["a"]["train"].aligned("local").alignment.rows
    assert 300 not in first_row_of_dup and 5 not in first_row_of_dup  # P0005 is not in B
    assert not (cache / "prl-state").exists() or not any((cache / "prl-state").rglob("*.*"))


def test_three_parties_link_the_common_ids(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    frames = {"a": range(0, 100), "b": range(30, 130), "c": range(50, 90)}
    clients = {cid: {"train": handle(tmp_path, f"{cid}_train",
                                     pd.DataFrame({"id": [f"{i}" for i in rows],
                                                   "v": np.arange(len(rows), dtype=float)}),
                                     ["id"], cache)}
               for cid, rows in frames.items()}

    io = run_plan("prl", {}, {cid: {"id_columns": ["id"]} for cid in frames}, clients,
                  cache_dir=cache)

    assert {c: m["train"]["n_overlapped_records"] for c, m in io.metrics[0].per_client.items()} \
        == {"a": 40, "b": 40, "c": 40}
    ids = [clients[c]["train"].aligned("local").to_pandas()["id"].tolist() for c in frames]
    assert ids[0] == ids[1] == ids[2] and sorted(ids[0], key=int) == [str(i) for i in range(50, 90)]


def test_several_id_columns_are_combined(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a = pd.DataFrame({"first": ["ann", "bob", "cy"] * 10, "dob": [f"2000-01-{d:02d}" for d in
                                                                  range(1, 31)], "v": 1.0})
    b = a.rename(columns={"first": "given", "dob": "born"}).iloc[::2].copy()
    clients = {"a": {"train": handle(tmp_path, "a", a, ["first", "dob"], cache)},
               "b": {"train": handle(tmp_path, "b", b, ["given", "born"], cache)}}

    io = run_plan("prl", {}, {"a": {"id_columns": ["first", "dob"]},
                              "b": {"id_columns": ["given", "born"]}}, clients, cache_dir=cache)

    assert io.metrics[0].per_client["a"]["train"]["n_overlapped_records"] == 15


def test_fuzzy_names_link_above_the_threshold_only(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    filler = [f"Person Number{i}" for i in range(20)]  # exact matches: enough rows to link
    a = pd.DataFrame({"name": ["Jonathan Smith", "Katherine Jones", "Michael Brown", "Ann Lee",
                               *filler], "zip": ["1000", "2000", "3000", "4000", *["9"] * 20],
                      "v": 1.0})
    b = pd.DataFrame({"fullname": ["Jonathon Smith", "Catherine Jones", "Peter Brown", "ANN LEE ",
                                   *filler], "postcode": ["1000", "2000", "3000", "4000",
                                                          *["9"] * 20], "w": 2.0})
    data = {"clients": {"a": {"id_columns": ["zip"], "fuzzy_columns": ["name"],
                              "normalise": {"name": ["casefold", "trim"]}},
                        "b": {"id_columns": ["postcode"], "fuzzy_columns": ["fullname"],
                              "normalise": {"fullname": ["casefold", "trim"]}}},
            "fuzzy": {"threshold": 0.75}}
    clients = {"a": {"train": handle(tmp_path, "fa", a, ["name", "zip"], cache)},
               "b": {"train": handle(tmp_path, "fb", b, ["fullname", "postcode"], cache)}}

    io = run_plan("prl", {}, data, clients, cache_dir=cache)

    left = clients["a"]["train"].aligned("local").to_pandas()["name"].tolist()
    right = clients["b"]["train"].aligned("local").to_pandas()["fullname"].tolist()
    # one-letter typos link (Dice ≈ 0.87 and 0.84); another first name does not (≈ 0.6)
    assert sorted(zip(left, right, strict=True)) == sorted(
        [("Jonathan Smith", "Jonathon Smith"), ("Katherine Jones", "Catherine Jones"),
         ("Ann Lee", "ANN LEE "), *zip(filler, filler, strict=True)])
    assert "fuzzy" in io.warnings
    strict = run_plan("prl", {}, {**data, "fuzzy": {"threshold": 0.95}}, clients,
                      cache_dir=tmp_path / "cache2")
    assert strict.metrics[0].per_client["a"]["train"]["n_overlapped_records"] == 21


def test_aligned_is_refused_without_alignment_or_after_the_file_changed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    clients = parties(tmp_path, cache)
    run_plan("prl", {}, CONFIG, clients, cache_dir=cache)
    train = clients["a"]["train"]

    with pytest.raises(ConfigError, match="'a_train' has no alignment from record-linkage "
                                          "session 'other'"):
        train.aligned("other")
    stranger = LoadedDataset(train.info, None, train.path,
                             alignments=AlignmentScope(cache, "someone-else"))
    with pytest.raises(ConfigError, match="no alignment"):
        stranger.aligned("local")
    frame = train.to_pandas()
    frame.iloc[::-1].to_parquet(train.path, index=False)  # same rows, another order: new version
    os.utime(train.path, ns=(1, 1))
    with pytest.raises(ConfigError, match="'a_train' changed since record-linkage session local"):
        train.aligned("local")


def test_an_intersection_below_one_partys_minimum_is_stored_by_no_party(tmp_path: Path) -> None:
    """11 people in common: enough for a (2 columns: minimum 10), not for b (8 columns: 13)."""
    cache = tmp_path / "cache"
    a = pd.DataFrame({"id": [str(i) for i in range(100)], "v": 1.0})
    b = pd.DataFrame({"id": [str(i) for i in range(89, 200)],
                      **{f"w{j}": 1.0 for j in range(7)}})
    clients = {"a": {"train": handle(tmp_path, "sa", a, ["id"], cache)},
               "b": {"train": handle(tmp_path, "sb", b, ["id"], cache)}}

    with pytest.raises(PermissionDenied, match="'sb' with the other parties has fewer than the "
                                               "13 rows"):
        run_plan("prl", {}, {"a": {"id_columns": ["id"]}, "b": {"id_columns": ["id"]}}, clients,
                 cache_dir=cache)
    assert load_alignment(cache, PRINCIPAL, "local", "sa") is None
    assert load_alignment(cache, PRINCIPAL, "local", "sb") is None


@pytest.mark.parametrize(("data", "field"), [
    ({"a": {"id_columns": ["x"]}}, "clients"),
    ({"a": {"id_columns": ["x"]}, "b": {"id_columns": ["x", "y"]}}, "same number of id_columns"),
    ({"a": {"id_columns": ["x"]}, "b": {"id_columns": ["x"], "normalise": ["upper"]}}, "normalise"),
    ({"a": {"id_columns": ["x"]}, "b": {"id_columns": ["x"]}, "c": {"id_columns": ["x"]},
      "protocol": "psi"}, "exactly two parties"),
])
def test_bad_configs_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(FedError, match=field):
        parse(data)


@pytest.mark.parametrize("protocol", ["keyed_hash", "psi"])
def test_nothing_the_coordinator_handles_holds_an_id_or_a_secret(tmp_path: Path, monkeypatch,
                                                                 protocol: str) -> None:
    """Every payload, answer, log line and the artefact pass through a recording relay; the
    parties' private keys, group key, PSI scalars and derived keys are captured where they are
    made; none of them, nor any raw id, appears in what the relay saw."""
    if protocol == "psi":
        pytest.importorskip("private_set_intersection")
    import asyncio
    import json

    import plan_harness

    import jupyter_fed.packages.prl._crypto as crypto
    from jupyter_fed.packages import get_package
    from jupyter_fed.packages.prl import _state

    secrets: list[bytes] = []
    real_put, real_derive = _state.PartyState.put, crypto.derive
    monkeypatch.setattr(_state.PartyState, "put", lambda self, name, data: (
        secrets.append(data) if name in ("x25519", "group", "psi-key") else None,
        real_put(self, name, data))[1])

    def derive(*args):
        key = real_derive(*args)
        secrets.append(key)
        return key

    for module in ("local", "_psi"):
        monkeypatch.setattr(f"jupyter_fed.packages.prl.{module}.derive", derive)
    seen: list[bytes] = []

    class Relay(plan_harness.LocalIO):
        async def step(self, name, payloads, **kw):
            for p in (payloads.values() if isinstance(payloads, dict) else [payloads]):
                seen.append(json.dumps(p.params).encode())
                seen.extend(t.tobytes() for t in p.tensors.values())
            found = await super().step(name, payloads, **kw)
            for a in found:
                seen.append(json.dumps(a.outputs).encode())
                seen.extend(t.tobytes() for t in a.tensors.values())
            return found

    cache = tmp_path / "cache"
    clients = parties(tmp_path, cache)
    plan = get_package("prl").load_plan()({}, {**CONFIG, "protocol": protocol}, 1)
    io = Relay("prl", clients, cache_dir=cache)
    asyncio.run(plan.run(io))
    seen += [m.encode() for m in io.logs] + [json.dumps(io.artefact.meta).encode()]
    seen += [json.dumps(io.metrics[0].per_client).encode()]

    assert len(secrets) >= 4
    everything = b"\n".join(seen)
    assert not [s for s in secrets if s in everything or s.hex().encode() in everything]
    ids = {v.strip().lower() for h in ("a", "b") for r in ("train", "test")
           for v in clients[h][r].to_pandas().iloc[:, 0] if v.strip()}
    assert not [i for i in ids if i.encode() in everything.lower()]


def _ids_seen(handle: LoadedDataset) -> list[str]:
    return [v for part in handle.map_arrow(["pid"], _column_values, batch_rows=7) for v in part]


def _column_values(table: pa.Table, first: int) -> list[str]:
    return table.column("pid").to_pylist()


@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")
@pytest.mark.parametrize("backend", [None, "dask"])
def test_map_arrow_reads_ids_as_stored_in_row_order(tmp_path: Path, backend: str | None) -> None:
    """CSV ids keep their leading zeros (read as text), with either backend and any blocking."""
    if backend:
        pytest.importorskip("distributed")
    from jupyter_fed.wire.models import DatasetBackend

    ids = [f"{i:05d}" for i in range(0, 3000, 7)]
    frame = pd.DataFrame({"pid": ids, "v": np.arange(len(ids), dtype=float)})
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"d.{suffix}"
        frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)
        info = inspect("d", path, ["pid"])
        if backend:
            info.backend = DatasetBackend(name="dask", blocksize=4096)
        handle = LoadedDataset(info, None, path)

        assert _ids_seen(handle) == ids


def test_joining_clients_are_checked_against_their_own_config() -> None:
    from jupyter_fed.packages.prl.plan import PRLPlan

    plan = PRLPlan({}, {"a": {"id_columns": ["pid"]}, "b": {"id_columns": ["pid"]}})
    ok = {"name": "d", "columns": [{"name": "pid", "role": "id"}]}
    feature = {"name": "e", "columns": [{"name": "pid", "role": "feature"}]}

    assert plan.check_client("a", {"train": ok}, "r") == []
    assert "not one of the clients" in plan.check_client("z", {"train": ok}, "r")[0].error
    assert "not registered as an id column" in plan.check_client("a", {"train": feature}, "r")[0].error
    assert "as both train and test" in plan.check_client("a", {"train": ok, "test": ok}, "r")[0].error
    with pytest.raises(ConfigError, match="takes no model_config"):
        PRLPlan({"epochs": 3}, {"a": {"id_columns": ["pid"]}, "b": {"id_columns": ["pid"]}})
