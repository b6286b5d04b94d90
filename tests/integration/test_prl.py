"""Private record linkage through real runners and the real engine: counts, secrecy, alignment.

Three runners hold train and test datasets whose ids overlap by known amounts, written
differently (case, spaces), with duplicates and blank ids; one party's files are csv. The
coordinator's state folder and logs are scanned for every raw id afterwards; a test-only package
(``tests/plans/jf_aligned.py``) reads the aligned rows at each runner, as vertical sessions will.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.errors import SessionFailed

HERE = Path(__file__).resolve().parents[1] / "plans"

# train: a = P0000…P0999, b = P0300…P1299 (+ duplicates, blanks), c = P0500…P1599 (csv)
# test:  a = T0000…T0199, b = T0100…T0299,                         c = T0150…T0349
SPANS = {"a": ((0, 1000), (0, 200)), "b": ((300, 1300), (100, 300)), "c": ((500, 1600), (150, 350))}
EXPECTED = {("a", "b"): (700, 100), ("a", "b", "c"): (500, 50)}


def _frame(party: str, prefix: str, lo: int, hi: int) -> pd.DataFrame:
    ids = [f"{prefix}{i:04d}" for i in range(lo, hi)]
    nums = list(range(lo, hi))
    if party == "b":  # written differently, plus duplicates (linked once) and blank ids
        ids = [f"  {i.lower()} " for i in ids] + [f"{prefix.lower()}{lo:04d}",
                                                  f"{prefix}{lo + 1:04d}", "", "  "]
        nums += [lo, lo + 1, -2, -2]  # duplicates are the same people again
    rng = np.random.default_rng(len(ids))
    order = rng.permutation(len(ids))  # row order says nothing about who is who
    return pd.DataFrame({"pid": np.asarray(ids)[order], "idnum": np.asarray(nums, float)[order],
                         "x": rng.normal(size=len(ids))})


@pytest.fixture(scope="module")
def prl_fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    root = tmp_path_factory.mktemp("prl-data")
    silos: dict[str, dict[str, object]] = {}
    for party, ((tlo, thi), (slo, shi)) in SPANS.items():
        silos[f"r{party}"] = {}
        for role, (prefix, lo, hi) in (("train", ("P", tlo, thi)), ("test", ("T", slo, shi))):
            frame = _frame(party, prefix, lo, hi)
            path = root / f"{party}_{role}.{'csv' if party == 'c' else 'parquet'}"
            frame.to_csv(path, index=False) if party == "c" else frame.to_parquet(path, index=False)
            silos[f"r{party}"][f"{party}_{role}"] = {"path": path, "id_columns": ["pid"]}
    shutil.copy(root / "b_train.parquet", root / "b_copy.parquet")
    silos["rb"]["b_copy"] = {"path": root / "b_copy.parquet", "id_columns": ["pid"]}
    env = {"JUPYTER_FED_PACKAGES": "jf_aligned",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    fed = LocalFederation(tmp_path_factory.mktemp("prl-runners"), silos, root,
                          env={name: env for name in silos})
    with fed:
        yield fed


@pytest.fixture()
def fed_client(prl_fed: LocalFederation, tmp_path: Path) -> Iterator[object]:
    import sys

    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import jf_aligned  # noqa: F401 - registers the probe package with this process's coordinator

    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coordinator",
                            runners=prl_fed.runners)
    yield c
    c.close()


NORMALISE = ["trim", "casefold"]


def link(client, parties: tuple[str, ...], protocol: str = "keyed_hash",
         train: dict[str, str] | None = None, **extra):
    data = {"clients": {p: {"id_columns": ["pid"], "normalise": {"pid": NORMALISE}}
                        for p in parties}, "protocol": protocol, **extra}
    session = client.create_prl_session("link", "test", data_config=data).start()
    tb = client.task_builder()
    group = SessionTaskGroup(session)
    for p in parties:
        name = (train or {}).get(p, f"{p}_train")
        group.add_task(tb.prl(train_dataset_name=f"r{p}/{name}", test_dataset_name=f"{p}_test",
                              client_name=p))
    group.start().wait(240)
    return session


def _all_ids() -> set[str]:
    out = set()
    for (tlo, thi), (slo, shi) in SPANS.values():
        for prefix, lo, hi in (("P", tlo, thi), ("T", slo, shi)):
            out |= {f"{prefix}{i:04d}" for i in range(lo, hi)}
    return out


def test_two_parties_link_exactly_and_the_coordinator_keeps_no_id(fed_client, prl_fed, tmp_path,
                                                                   caplog) -> None:
    caplog.set_level(logging.DEBUG)

    session = link(fed_client, ("a", "b"))

    metrics = session.metrics().as_dict()
    assert metrics == {"session_id": session.id, "federated_metrics": [], "client_metrics": {
        "a": {"train": {"n_records": 1000, "n_overlapped_records": 700, "frac_overlapped": 0.7},
              "test": {"n_records": 200, "n_overlapped_records": 100, "frac_overlapped": 0.5}},
        "b": {"train": {"n_records": 1004, "n_overlapped_records": 700,
                        "frac_overlapped": round(700 / 1004, 4)},
              "test": {"n_records": 204, "n_overlapped_records": 100,
                       "frac_overlapped": round(100 / 204, 4)}}}}
    result = session.results()
    assert result.counts["b"]["train"]["n_duplicates"] == 2
    assert result.counts["b"]["train"]["n_missing"] == 2
    # nothing the coordinator keeps or logs holds an id, in any spelling
    ids = _all_ids()
    needles = [s.encode() for i in ids for s in (i, i.lower())]
    blobs = [p.read_bytes() for p in (tmp_path / "coordinator").rglob("*") if p.is_file()]
    blobs.append("\n".join(r["message"] for r in session.logs()).encode())
    blobs.append(caplog.text.encode())
    assert not [n for n in needles for b in blobs if n in b][:5]
    # each runner: its alignment is private to the runner's user; the session's secrets are gone
    for party in ("a", "b"):
        home = prl_fed.processes[f"r{party}"].home
        files = list((home / "cache" / "alignments").rglob("*.safetensors"))
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        assert not [p for p in (home / "cache" / "prl-state").rglob("*") if p.is_file()]


def test_three_parties_link_the_common_ids_with_a_csv_party(fed_client) -> None:
    session = link(fed_client, ("a", "b", "c"))

    per = session.metrics().as_dict()["client_metrics"]
    assert {p: (m["train"]["n_overlapped_records"], m["test"]["n_overlapped_records"])
            for p, m in per.items()} == dict.fromkeys("abc", EXPECTED[("a", "b", "c")])


def test_psi_links_two_parties_like_keyed_hashing(fed_client) -> None:
    pytest.importorskip("private_set_intersection")

    session = link(fed_client, ("a", "c"), protocol="psi", psi_threads=2)

    per = session.metrics().as_dict()["client_metrics"]
    assert per["a"]["train"]["n_overlapped_records"] == 500  # P0500…P0999
    assert per["c"]["test"]["n_overlapped_records"] == 50  # T0150…T0199
    assert session.results().protocol == "psi"


def _probe(client, prl_session_id: str, parties: tuple[str, ...],
           train: dict[str, str] | None = None):
    session = client.create_analytics_session(
        "aligned_probe", "probe", data_config={"prl_session_id": prl_session_id,
                                               "column": "idnum"}, num_datasets=len(parties))
    tb = client.task_builder()
    group = SessionTaskGroup(session)
    for p in parties:
        group.add_task(tb.prl(f"r{p}/{(train or {}).get(p, f'{p}_train')}", f"{p}_test",
                              client_name=p))
    group.start()
    session.wait(120, raise_on_failure=False)
    return session


def test_aligned_rows_are_the_same_people_in_the_same_order(fed_client) -> None:
    linked = link(fed_client, ("a", "b"))

    probe = _probe(fed_client, linked.id, ("a", "b"))

    cols = probe.results().columns
    for role, (lo, hi) in (("train", (300, 1000)), ("test", (100, 200))):
        a, b = cols[f"a:{role}"], cols[f"b:{role}"]
        assert np.array_equal(a, b)
        assert sorted(a.astype(int).tolist()) == list(range(lo, hi))  # = the merge on the ids


def _stranger(fed: LocalFederation, state: Path) -> object:
    """A client whose tokens belong to another model builder."""
    runners = []
    for proc in fed.processes.values():
        token = proc.builder_token("stranger")
        runners.append({"name": proc.name, "url": proc.url, "token": token,
                        "fingerprint": proc.fingerprint})
    return jupyter_fed.connect(embedded=True, state_dir=state, runners=runners)


def test_another_user_and_a_changed_file_get_no_aligned_rows(fed_client, prl_fed,
                                                              tmp_path) -> None:
    linked = link(fed_client, ("a", "b"), train={"b": "b_copy"})
    ok = _probe(fed_client, linked.id, ("a", "b"), train={"b": "b_copy"})
    assert ok.status() == "completed"
    stranger = _stranger(prl_fed, tmp_path / "stranger")
    try:
        theirs = _probe(stranger, linked.id, ("a", "b"), train={"b": "b_copy"})
        assert theirs.status() == "failed"
        assert "no alignment from record-linkage session" in theirs.info()["error"]
    finally:
        stranger.close()

    path = prl_fed.data_root / "b_copy.parquet"
    frame = pd.read_parquet(path)
    frame.iloc[::-1].to_parquet(path, index=False)  # the same rows in another order
    changed = _probe(fed_client, linked.id, ("a", "b"), train={"b": "b_copy"})

    assert changed.status() == "failed"
    assert "'b_copy' changed since record-linkage session" in changed.info()["error"]
    with pytest.raises(SessionFailed, match="no alignment from record-linkage session"):
        _probe(fed_client, "0123456789", ("a", "b")).wait(1)  # a session that linked nothing


def test_federate_prl_cell_links_and_shows_the_overlap(fed_client, capsys) -> None:
    # The process-wide test shell other tests share: a second singleton class would clash.
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.user_ns["fed_client"] = fed_client
    shell.run_line_magic("load_ext", "jupyter_fed")
    shell.run_line_magic("fed", "use fed_client")

    shell.run_cell_magic("federate", "prl -o linked", (
        "protocol: keyed_hash\n"
        "clients:\n"
        "  a: {train: ra/a_train, test: a_test, id_columns: [pid], normalise: [trim, casefold]}\n"
        "  b: {train: rb/b_train, test: b_test, id_columns: [pid], normalise: [trim, casefold]}\n"))

    out = capsys.readouterr().out
    session = shell.user_ns["linked"]
    assert session.status() == "completed"
    assert session.metrics().as_dict()["client_metrics"]["a"]["train"][
        "n_overlapped_records"] == 700
    assert "linked 700 train, 100 test records across 2 parties" in out
    shell.run_line_magic("unload_ext", "jupyter_fed")
    from jupyter_fed.magics._client import reset_client

    reset_client()
