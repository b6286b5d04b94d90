"""Attack #1, the tracker: exact statistics of overlapping row filters isolate one row.

Dataset of 2,000 rows: A (no filter), B ``x0 < 1001`` (one user), C ``x0 >= 1000`` (another user).
Before: ``sums_B + sums_C - sums_A`` was exactly row ``x0 == 1000``. Now a filter makes a query
differentially private, so the combination is that row plus noise far larger than the row.

False-failure probability: each recovered column is off by Gaussian noise of standard deviation
above 100 (noise scale ~5 per unit of sensitivity, sensitivity sqrt(28) in units of a half-range
of ~9): the chance that all four columns x1..x4 land within 1 of the truth is below 1e-10.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from attack import log_text, run_analytics

COLUMNS = ["x0", "x1", "x2", "x3", "x4", "y"]


def sums(client: Any, where: str | None) -> tuple[float, np.ndarray, Any]:
    """(n, column sums, results) of a stats query on the tracker dataset."""
    config: dict[str, Any] = {"tracker": COLUMNS}
    if where:
        config["filter"] = where
    session = run_analytics(client, "stats", ["tracker"], config)
    assert session.status() == "completed", log_text(session)
    results = session.results()
    return results.n, results.sums().to_numpy(), results


def recovered_error(frames: dict[str, Any], target: float, estimate: np.ndarray) -> np.ndarray:
    row = frames["tracker"].loc[frames["tracker"].x0 == target, COLUMNS].to_numpy(float)[0]
    # x1..x4: what the attacker did not choose; a withheld (NaN) sum recovers nothing
    return np.nan_to_num(np.abs(estimate - row)[1:5], nan=np.inf)


def test_two_users_cannot_isolate_a_row_with_overlapping_filters(new_client, frames, fed) -> None:
    ann, bob = new_client(), new_client()

    n_a, s_a, _ = sums(ann, None)
    n_b, s_b, res_b = sums(ann, "x0 < 1001")
    n_c, s_c, res_c = sums(bob, "x0 >= 1000")

    error = recovered_error(frames, 1000.0, s_b + s_c - s_a)
    print(f"\ntracker: n_B + n_C - n_A = {n_b + n_c - n_a}, recovered-row error {error.round(1)}")
    assert n_a == 2000 and res_b.private and res_c.private  # A exact; B and C are DP
    assert error.max() > 1.0
    with fed.processes["p0"].http() as http:  # and each filtered query was charged
        spent = {r["principal"]: r["spent"] for r in http.get("/v1/budget").json()
                 if "tracker" in r["dataset"].split(",")}  # its file may have other names
    assert spent[ann.user] == pytest.approx(1.0) and spent[bob.user] == pytest.approx(1.0)


def _family(rng: np.random.Generator) -> list[tuple[list[tuple[str | None, int]], float]]:
    """Generated trackers: ([(filter, sign)], target x0); the signed sum of the answers' sums is
    the target row when the answers are exact."""
    out = []
    for _ in range(2):
        v = float(rng.integers(200, 1800))
        t = float(rng.normal(20, 3))
        out.append(([(None, -1), (f"x0 <= {v:g}", 1), (f"x0 >= {v:g}", 1)], v))  # 3 queries
        out.append(([(None, 1), (f"x0 < {v:g}", -1), (f"x0 > {v:g} AND x2 < {t:.3f}", -1),
                     (f"x0 > {v:g} AND x2 >= {t:.3f}", -1)], v))  # 4 queries
    v = float(rng.integers(200, 1800))
    out.append(([(None, 1), (f"x0 < {v:g} OR x0 > {v:g}", -1)], v))  # the 2-query difference
    return out


def test_generated_three_and_four_query_trackers_recover_nothing(new_client, frames) -> None:
    rng = np.random.default_rng(11)
    users = [new_client() for _ in range(3)]
    turn = 0
    for queries, target in _family(rng):
        estimate = np.zeros(len(COLUMNS))
        for where, sign in queries:
            turn += 1  # the queries of one tracker come from different principals
            _, s, results = sums(users[turn % len(users)], where)
            assert where is None or results.private  # every filtered answer is DP
            estimate += sign * s
        error = recovered_error(frames, target, estimate)
        print(f"\n{len(queries)} queries on x0 == {target:g}: recovered-row error {error.round(1)}")
        assert error.max() > 1.0


def test_a_view_and_the_whole_file_cannot_be_differenced_across_packages(fed, new_client,
                                                                          privacy_root) -> None:
    """Exact stats of a view one row short of the file, then ffnet's exact feature moments of
    the whole file, would give that row's predictors: the second answer is refused."""
    import shutil
    import uuid

    from attack import register

    from jupyter_fed import SessionTaskGroup

    name = f"regress_{uuid.uuid4().hex[:6]}"
    shutil.copy(privacy_root / "regress.parquet", privacy_root / f"{name}.parquet")
    whole = register(fed, "p0", {"name": name, "path": str(privacy_root / f"{name}.parquet")})
    view = register(fed, "p0", {"name": f"{name}_v", "path": str(privacy_root / f"{name}.parquet"),
                                "view": "x0 >= 1"})  # x0 is 0..199: one row left out
    client = new_client()

    exact = run_analytics(client, "stats", [view], {view: ["x0", "x1"]})
    session = client.create_fl_session(
        name="moments", min_num_clients=1, num_rounds=1,
        model_config={"model": {"params": {"input_size": 2, "output_size": 1}},
                      "ml_task": {"type": "regression"}, "normalize": True},
        data_config={"predictors": ["x0", "x1"], "target": "y"}).start()
    try:
        SessionTaskGroup(session).add_task(client.task_builder().hfl(whole, runner="p0")
                                           ).start().wait(60)
    except Exception:
        pass

    assert exact.status() == "completed" and exact.results().n == 199
    assert session.status() == "failed"
    assert "feature moments would describe those rows" in log_text(session)
