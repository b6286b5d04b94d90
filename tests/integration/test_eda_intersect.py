"""EDA intersect mode through real runners: a record linkage first, then EDA on its intersection.

Two runners hold the two halves of a vertical dataset: ``a`` has ``u`` (numeric) and ``g`` (three
groups), ``b`` has ``v = 0.6 u + 0.8 e`` and ``w = 2 + g + e'``. Of 3,000 rows each, 2,400 are
the same people; the others' ``u`` is shifted by +3, so statistics of the whole dataset and of
the intersection differ. Every noisy answer is compared with numpy on the joined rows, within
the DP error of the epsilons used; afterwards the coordinator's state folder and each runner's
home are searched for the other party's values.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.errors import ConfigError

COMMON, OWN = 2400, 600
BOUNDS = {"u": (-4.0, 4.0), "v": (-4.0, 4.0), "w": (-2.0, 8.0)}


def _people(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = COMMON + 2 * OWN
    u = rng.normal(size=n)
    u[COMMON:] += 3.0  # people outside the intersection look different
    g = rng.integers(0, 3, size=n).astype(float)
    return pd.DataFrame({"pid": [f"Q{i:05d}" for i in range(n)], "u": u, "g": g,
                         "v": 0.6 * u + 0.8 * rng.normal(size=n),
                         "w": 2.0 + g + 0.5 * rng.normal(size=n)})


@pytest.fixture(scope="module")
def vertical(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalFederation,
                                                                          pd.DataFrame]]:
    root = tmp_path_factory.mktemp("eda-intersect-data")
    people = _people()
    rng = np.random.default_rng(7)
    a_rows = rng.permutation(np.r_[np.arange(COMMON), COMMON + np.arange(OWN)])
    b_rows = rng.permutation(np.r_[np.arange(COMMON), COMMON + OWN + np.arange(OWN)])
    people.iloc[a_rows][["pid", "u", "g"]].to_parquet(root / "a.parquet", index=False)
    people.iloc[b_rows][["pid", "v", "w"]].to_parquet(root / "b.parquet", index=False)
    third = people.assign(z=people["u"] + 0.1 * rng.normal(size=len(people)))
    third.iloc[rng.permutation(COMMON)][["pid", "z"]].to_parquet(root / "c.parquet", index=False)
    silos = {"ra": {"a_rows": {"path": root / "a.parquet", "id_columns": ["pid"],
                               "bounds": {"u": BOUNDS["u"]}},
                    "c_rows": {"path": root / "c.parquet", "id_columns": ["pid"],
                               "bounds": {"z": BOUNDS["u"]}}},
             "rb": {"b_rows": {"path": root / "b.parquet", "id_columns": ["pid"],
                               "bounds": {c: BOUNDS[c] for c in ("v", "w")}}}}
    fed = LocalFederation(tmp_path_factory.mktemp("eda-intersect-runners"), silos, root)
    with fed:
        yield fed, people.iloc[:COMMON]


@pytest.fixture()
def client(vertical, tmp_path: Path) -> Iterator[object]:
    """A fresh principal (its own budgets and linkages) with its own embedded coordinator."""
    fed, _ = vertical
    user = "e_" + uuid.uuid4().hex[:8]
    runners = []
    for proc in fed.processes.values():
        token = proc.builder_token(user)
        runners.append({"name": proc.name, "url": proc.url, "token": token,
                        "fingerprint": proc.fingerprint})
    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coordinator", runners=runners)
    c.user = user
    yield c
    c.close()


def _link(client) -> str:
    prl = client.create_prl_session("link", data_config={
        "a": {"id_columns": ["pid"]}, "b": {"id_columns": ["pid"]}}).start()
    tb = client.task_builder()
    (SessionTaskGroup(prl).add_task(tb.prl("ra/a_rows", client_name="a"))
     .add_task(tb.prl("rb/b_rows", client_name="b")).start().wait(120))
    return prl.id


def _intersect(client, prl_id: str, paired: dict[str, list[str]], **kw):
    session = client.create_eda_session(
        "inter", "test", data_config={"a": {"columns": ["u", "g"]}, "b": ["v", "w"]},
        eda_mode="intersect", prl_session_id=prl_id, paired_columns=paired, **kw).start()
    tb = client.task_builder()
    (SessionTaskGroup(session).add_task(tb.eda("ra/a_rows", client_name="a"))
     .add_task(tb.eda("rb/b_rows", client_name="b")).start().wait(120))
    return session


PAIRED = {"a": ["u", "g"], "b": ["v", "w"]}


@pytest.fixture()
def explored(client, vertical):
    prl_id = _link(client)
    session = _intersect(client, prl_id, PAIRED, epsilon=4.0, pair_epsilon=6.0,
                         categorical=["g"])
    return client, session, vertical[1]


def test_pairs_match_the_joined_rows_within_dp_error(explored) -> None:
    _, session, joined = explored

    r = session.results()
    a, b = r["a"], r["b"]

    assert r.n == COMMON and list(r) == ["a", "b"]
    assert set(r.describe().columns.get_level_values(0)) == {"a", "b"}
    assert abs(a["u"].mean() - joined["u"].mean()) < 0.1  # the intersection's, not the file's
    assert sorted(a["g"].uniques()) == [0.0, 1.0, 2.0]
    # 2D histogram of (u, v) against numpy on the joined rows, over the released bins
    view = r.pair(a["u"], b["v"])
    ex = np.linspace(*BOUNDS["u"], 11)
    ey = np.linspace(*BOUNDS["v"], 11)
    true, _, _ = np.histogram2d(np.clip(joined["u"], -4, 3.999), np.clip(joined["v"], -4, 3.999),
                                bins=[ex, ey])
    released = view.counts
    shown = released > 0
    # each cell: discrete Laplace of scale 4 (epsilon 1 per pair, a quarter on the counts)
    assert np.abs(released[shown] - true[shown]).max() < 45
    assert (true[~shown] < 10 + 45).all()
    assert abs(released.sum() - COMMON) < 0.05 * COMMON
    assert r.plot_hist(a["u"], b["v"]).axes
    # correlation, and the same pair the other way round
    truth = np.corrcoef(np.clip(joined["u"], -4, 4), np.clip(joined["v"], -4, 4))[0, 1]
    assert abs(r.corr(a["u"], b["v"]) - truth) < 0.1
    assert r.corr(b["v"], a["u"]) == pytest.approx(r.corr(a["u"], b["v"]))
    # groupby: w's mean per group of g (categorical at a, numeric at b)
    means = r.groupby(a["g"])[b["w"]].mean()
    true_means = joined.groupby("g")["w"].mean()
    for g in (0.0, 1.0, 2.0):
        assert abs(means.loc[g] - true_means.loc[g]) < 0.3
    # arithmetic across parties: exact moments, derived histograms
    total = a["u"] + b["v"]
    assert abs(total.mean() - (joined["u"] + joined["v"]).mean()) < 0.15
    assert abs(total.std() - (joined["u"] + joined["v"]).std()) < 0.3
    assert abs((a["u"] * b["v"]).mean() - (joined["u"] * joined["v"]).mean()) < 0.15
    assert abs((a["u"] - b["v"]).median() - (joined["u"] - joined["v"]).median()) < 0.4
    assert total.plot_hist().axes
    ratio = b["w"] / a["u"]
    assert ratio.counts.sum() > 0 and 0 < ratio.dropped < 1
    # a pair within one party is released too (locally, same noise)
    assert abs(r.corr(b["v"], b["w"]) - np.corrcoef(joined["v"], joined["w"])[0, 1]) < 0.15


def test_both_parties_pay_for_the_pairs(explored, vertical) -> None:
    client, _, _ = explored
    fed, _ = vertical

    spent = {}
    for runner in ("ra", "rb"):
        with fed.processes[runner].http() as admin:
            rows = admin.get("/v1/budget", params={"principal": client.user}).json()
        spent[runner] = sum(row["spent"] for row in rows)

    # six pairs at 1 each; each party takes part in five of them, on top of its 4 for 1D
    assert spent == {"ra": pytest.approx(9.0), "rb": pytest.approx(9.0)}


def _numbers_in(blob: bytes, values: np.ndarray) -> int:
    """How many of ``values`` occur in ``blob``: as float64 at any offset, or written out with at
    least 9 significant digits. Not float32, nor fewer digits: megabytes of ciphertext, or
    hundreds of released numbers, hold a few of 2,400 given values that way by chance."""
    found = 0
    for off in range(8):
        n = (len(blob) - off) // 8
        if n > 0:
            found += int(np.isin(np.frombuffer(blob, dtype=np.float64, count=n, offset=off),
                                 values).sum())
    text = blob.decode("latin-1")
    written = {f"{x:.9g}" for x in values}
    found += sum(1 for m in re.findall(r"-?\d+\.\d{8,}", text) if f"{float(m):.9g}" in written)
    return found


def test_no_party_nor_the_coordinator_holds_the_other_partys_values(explored, vertical,
                                                                     tmp_path) -> None:
    _, session, joined = explored
    fed, _ = vertical

    u = joined["u"].to_numpy()
    v = joined["v"].to_numpy()
    coordinator = [p.read_bytes() for p in (tmp_path / "coordinator").rglob("*") if p.is_file()]
    coordinator.append("\n".join(r["message"] for r in session.logs()).encode())
    ra = [p.read_bytes() for p in fed.processes["ra"].home.rglob("*") if p.is_file()]
    rb = [p.read_bytes() for p in fed.processes["rb"].home.rglob("*") if p.is_file()]

    assert _numbers_in(b"#" + u.tobytes(), u) == len(u)  # the search finds values written
    assert _numbers_in(repr(v.tolist()).encode(), v) == len(v)  # as bytes and as text
    assert sum(_numbers_in(b, u) + _numbers_in(b, v) for b in coordinator) == 0
    assert sum(_numbers_in(b, u) for b in rb) == 0  # b evaluated on a's ciphertexts only
    assert sum(_numbers_in(b, v) for b in ra) == 0  # a decrypted noisy totals only
    assert not list((fed.processes["ra"].home / "cache" / "eda-intersect").rglob("*.key"))


def test_bad_input_is_refused_naming_the_field(client) -> None:
    with pytest.raises(ConfigError, match="prl_session_id") as unknown:
        _intersect(client, "0123456789abcdef", PAIRED)
    assert unknown.value.details[0]["field"] == "data_config.prl_session_id"

    with pytest.raises(ConfigError, match="eda_mode") as mode:
        client.create_eda_session("x", data_config={"a": []}, eda_mode="vertical")
    assert mode.value.details[0]["field"] == "eda_mode"

    prl_id = _link(client)
    with pytest.raises(Exception, match=r"data_config\.paired_columns\.b.*'u' is not a column"):
        _intersect(client, prl_id, {"a": ["u"], "b": ["u"]})
    with pytest.raises(ConfigError, match="paired_columns names client 'c'"):
        _intersect(client, prl_id, {"a": ["u"], "c": ["v"]})


def test_the_evaluator_receives_a_public_key_and_ciphertexts_only(explored, vertical) -> None:
    import tenseal as ts

    from jupyter_fed.packages.eda_intersect._he import unpack
    from jupyter_fed.wire import decode

    fed, joined = vertical
    home = fed.processes["ra"].home

    # the plan relays the key owner's encrypt result unchanged: that is what b received
    sent = [decode(p.read_bytes()) for p in home.rglob("*.safetensors") if "results" in p.parts]
    sent = [t for t in sent if "public" in t]

    assert sent and all(set(t) == {"public", "ct", "ct_sizes"} for t in sent)
    ctx = ts.context_from(sent[0]["public"].tobytes())
    assert not ctx.is_private() and ctx.has_public_key()  # the secret key never left a's runner
    chunks = unpack(sent[0])
    assert len(chunks) >= 1
    for blob in chunks:
        vec = ts.bfv_vector_from(ctx, blob)
        with pytest.raises(ValueError):
            vec.decrypt()  # nobody but a can read them
    assert _numbers_in(sent[0]["ct"].tobytes(), joined["u"].to_numpy()) == 0


def test_three_parties_each_pair_under_its_own_key(client, vertical) -> None:
    prl = client.create_prl_session("link3", data_config={
        p: {"id_columns": ["pid"]} for p in ("a", "b", "c")}).start()
    tb = client.task_builder()
    (SessionTaskGroup(prl).add_task(tb.prl("ra/a_rows", client_name="a"))
     .add_task(tb.prl("rb/b_rows", client_name="b"))
     .add_task(tb.prl("ra/c_rows", client_name="c")).start().wait(120))
    session = client.create_eda_session(
        "inter3", data_config={"a": ["u"], "b": ["v"], "c": ["z"]}, eda_mode="intersect",
        prl_session_id=prl.id, paired_columns={"a": ["u"], "b": ["v"], "c": ["z"]},
        epsilon=2.0, pair_epsilon=6.0).start()
    group = SessionTaskGroup(session)
    for party, ref in (("a", "ra/a_rows"), ("b", "rb/b_rows"), ("c", "ra/c_rows")):
        group.add_task(tb.eda(ref, client_name=party))
    group.start().wait(120)

    r = session.results()
    joined = vertical[1]
    z = joined["u"]  # z is u plus a little noise

    assert r.n == COMMON and r.pairs() == [("a.u", "b.v"), ("a.u", "c.z"), ("b.v", "c.z")]
    assert r.corr(r["a"]["u"], r["c"]["z"]) > 0.9  # ~0.99 before the noise (1 run in 3 < 0.95)
    truth = np.corrcoef(np.clip(joined["v"], -4, 4), np.clip(z, -4, 4))[0, 1]
    assert abs(r.corr(r["b"]["v"], r["c"]["z"]) - truth) < 0.1  # b owned the key for this one
