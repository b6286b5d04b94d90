"""The coordinator's merge (contracts on receipt) and the results object the kernel explores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyter_fed.contracts import ContractSyntaxError
from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages import get_package
from jupyter_fed.packages._analytics import Contribution
from jupyter_fed.packages.base import StepContext
from jupyter_fed.packages.stats._moments import Moments, Stats
from jupyter_fed.packages.stats.local import compute
from jupyter_fed.packages.stats.model import StatsResults
from jupyter_fed.packages.stats.plan import StatsPlan
from jupyter_fed.runner.data import LoadedDataset, inspect
from jupyter_fed.wire import decode, encode


def silo(seed: int, n: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 3)) + shift, columns=["a", "b", "c"])
    df["t"] = 2.0 * df.a - 0.5 * df.b + 0.1 * df.c + rng.normal(scale=0.3, size=n)
    df["g"] = (rng.random(n) < 0.3 + 0.2 * shift).astype(np.int64)
    return df


@pytest.fixture(scope="module")
def silos() -> dict[str, pd.DataFrame]:
    return {"s0/d0": silo(0, 500, 0.0), "s1/d1": silo(1, 800, 1.0)}


def contributions(silos, tmp: Path, plan: StatsPlan) -> list[Contribution]:
    out = []
    for cid, df in silos.items():
        name = cid.split("/")[1]
        path = tmp / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
        ctx = StepContext("t", 1, policy={"data": {"min_count": 10}}, cache_dir=tmp / cid)
        res = compute(ctx, {"data": LoadedDataset(inspect(name, path), None, path)},
                      plan.step_params(name), {})
        outputs = json.loads(json.dumps({**res.outputs, "num_examples": res.num_examples}))
        out.append(Contribution(cid, name, outputs, decode(encode(res.tensors)) if res.tensors else {}))
    return out


def session(silos, tmp: Path, model_config: dict | None = None) -> tuple[StatsResults, dict]:
    """Runner steps, the coordinator's merge and the kernel's rebuild, as the engine chains them."""
    plan = StatsPlan(model_config or {}, {})
    merged = plan.merge(contributions(silos, tmp, plan))
    meta = {**plan.artefact_meta(), "results": json.loads(json.dumps(merged.results)),
            "rejected": merged.rejected}
    return get_package("stats").load_model()(decode(encode(merged.tensors)), meta), merged.tensors


def test_merged_results_equal_the_pooled_rows(silos, tmp_path) -> None:
    pooled = pd.concat(silos.values())

    results, _ = session(silos, tmp_path)

    assert results.n == 1300 and results.peers == ["s0/d0", "s1/d1"]
    assert results.mean("a") == pytest.approx(pooled.a.mean(), rel=1e-9)
    assert results.variance_unbiased("t") == pytest.approx(pooled.t.var(), rel=1e-9)
    assert results.covar("a", "t") == pytest.approx(np.cov(pooled.a, pooled.t, bias=True)[0, 1], rel=1e-9)
    assert results.lincorr("a", "b") == pytest.approx(np.corrcoef(pooled.a, pooled.b)[0, 1], rel=1e-9)
    assert results.cond_mean("c", "g") == pytest.approx(pooled.c[pooled.g == 1].mean(), rel=1e-9)
    assert results.compl_cond_stddev("a", "g") == pytest.approx(pooled.a[pooled.g == 0].std(ddof=0),
                                                                rel=1e-9)
    assert results.pct_of_true("g", "g") == 100.0
    assert results.num_occurence_when_false("g", "g") == 0
    np.testing.assert_allclose(results.correlation_matrix().to_numpy(),
                               np.corrcoef(pooled.to_numpy(np.float64), rowvar=False), rtol=1e-9)
    np.testing.assert_allclose(results.xtx().to_numpy(), pooled.to_numpy(float).T @
                               pooled.to_numpy(float), rtol=1e-9)


def test_each_peer_is_explored_alone(silos, tmp_path) -> None:
    results, _ = session(silos, tmp_path)

    for cid, df in silos.items():
        peer = results.peer(cid)
        assert peer.n == len(df)
        assert peer.mean("a") == pytest.approx(df.a.mean(), rel=1e-9)
        assert peer.cond_variance_unbiased("t", "g") == pytest.approx(df.t[df.g == 1].var(), rel=1e-9)
    assert results.peer("d1") is results.peer("s1") is results.peer("s1/d1")
    assert math.isnan(results.cond_mean("a", "b"))  # b is not binary: not defined
    with pytest.raises(KeyError, match="not a peer"):
        results.peer("nobody")
    with pytest.raises(KeyError, match="column 'zz'"):
        results.mean("zz")


def test_ols_equals_lstsq_on_the_pooled_rows(silos, tmp_path) -> None:
    pooled = pd.concat(silos.values())
    design = np.column_stack([np.ones(len(pooled)), pooled[["a", "b", "c", "g"]].to_numpy(float)])
    y = pooled.t.to_numpy()
    coef, rss, *_ = np.linalg.lstsq(design, y, rcond=None)
    df = len(y) - design.shape[1]
    se = np.sqrt(rss[0] / df * np.diag(np.linalg.inv(design.T @ design)))

    fit = session(silos, tmp_path)[0].ols("t", ["a", "b", "c", "g"])

    np.testing.assert_allclose(fit.coefficients.to_numpy(), coef, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.std_errors.to_numpy(), se, rtol=1e-9)
    assert fit.r2 == pytest.approx(1 - rss[0] / ((y - y.mean()) ** 2).sum(), rel=1e-9)
    assert fit.df_resid == df and list(fit.table().columns) == ["coef", "std_err", "t", "p_value"]
    assert fit.p_values["a"] < 1e-12 and 0 < fit.p_values["c"] <= 1
    np.testing.assert_allclose(fit.predict(pooled), design @ coef, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="collinear"):
        session(silos, tmp_path)[0].ols("t", ["a", "a"])


def test_receive_side_block_leaves_the_failing_peer_out_everywhere(silos, tmp_path) -> None:
    rule = "MEAN(a) > 0.5"  # s1 is shifted by 1, s0 is not
    results, tensors = session(silos, tmp_path, {"contract": rule, "send_action": "allow"})

    assert results.rejected == {"s0/d0": f"rule 1 failed: {rule}"}
    assert results.peers == ["s1/d1"] and results.n == 800
    assert results.mean("a") == pytest.approx(silos["s1/d1"].a.mean(), rel=1e-9)
    assert all(not name.startswith("peer1/") for name in tensors)  # its values are not stored
    with pytest.raises(KeyError, match="left out: rule 1 failed"):
        results.peer("s0/d0")
    assert f"{silos['s0/d0'].a.mean():.4f}" not in json.dumps(results.meta)


def test_receive_side_allow_keeps_it_with_a_warning(silos, tmp_path) -> None:
    results, _ = session(silos, tmp_path, {"contract": "MEAN(a) > 0.5", "send_action": "allow",
                                           "receive_action": "allow"})

    assert results.rejected == {} and results.n == 1300
    assert results.warnings["s0/d0"][-1] == ("kept although the contract failed at the "
                                             "coordinator: rule 1 failed: MEAN(a) > 0.5")


def test_a_runner_that_blocked_is_reported_with_the_rule(silos, tmp_path) -> None:
    results, _ = session(silos, tmp_path, {"contract": "COUNT(a) > 1\nMEAN(a) > 0.5"})

    assert results.rejected == {"s0/d0": "not shared by its runner: rule 2 failed: MEAN(a) > 0.5"}
    assert results.peers == ["s1/d1"]
    assert "rule 2 failed: MEAN(a) &gt; 0.5" in results._repr_html_()


def test_malformed_contributions_are_left_out() -> None:
    plan = StatsPlan({}, {})
    bad = Contribution("x/y", "y", {"columns": ["a"], "binary": [], "conditioned": []},
                       {"n": np.array(3.0), "count": np.ones(1), "mean": np.ones(2), "m2": np.ones((2, 2))})

    good_stats = Stats(["a"], Moments.of(np.arange(30.0).reshape(-1, 1)), np.full(1, 30.0))
    arrays, meta = good_stats.to_tensors()
    good = Contribution("x/z", "z", {**meta}, arrays)

    merged = plan.merge([bad, good])
    with pytest.raises(SessionFailed, match=r"no contribution was left to merge \(x/y: malformed"):
        plan.merge([bad])  # nothing left: the session fails, naming why

    assert merged.rejected["x/y"].startswith("malformed statistics")
    assert StatsResults(merged.tensors, {"results": merged.results}).n == 30


def test_a_bad_contract_fails_when_the_session_is_created() -> None:
    with pytest.raises(ContractSyntaxError) as info:
        StatsPlan({"contract": "COUNT(a) > 1\nMEAN(a) >> 2"}, {})

    assert (info.value.line, info.value.column) == (2, 10)
    assert info.value.message.startswith("model_config.contract: line 2, column 10: expected a number")


def test_html_summary_lists_peers_and_columns(silos, tmp_path) -> None:
    html = session(silos, tmp_path)[0]._repr_html_()

    assert "1300 rows from 2 peer(s)" in html and "s1/d1" in html and "<table" in html
