"""VFL-GBM with three parties (two passive) and a regression task, through real runners.

Every split on a passive party's column is routed by that party alone, and the other passive
party histograms the next level from the merged node array: the trees must still be the ones
scikit-learn grows on the joined rows (same R², up to float rounding).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow.parquet as pq
import pytest

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.data import write_vertical
from jupyter_fed.demo.federation import LocalFederation

COLS = {"p0": [f"x{i}" for i in range(5)], "p1": [f"x{i}" for i in range(5, 10)],
        "p2": [f"x{i}" for i in range(10, 15)]}
PARAMS = {"max_depth": 3, "learning_rate": 0.3, "max_bins": 16, "max_iter": 2,
          "min_samples_leaf": 20, "l2_regularization": 1.0}


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, LocalFederation]]:
    root = tmp_path_factory.mktemp("vgbm3-data")
    paths = write_vertical(root / "gen", rows=800, parties=3, overlap=0.9, test_rows=300)
    silos: dict[str, dict[str, object]] = {}
    for i in range(3):
        runner = f"r{i}"
        silos[runner] = {}
        for role in ("train", "test"):
            path = root / f"{runner}_{role}.parquet"
            pq.write_table(pq.read_table(paths[f"party{i}"][role]), path)
            silos[runner][f"{runner}_{role}"] = {"path": path, "id_columns": ["patient_id"]}
    with LocalFederation(tmp_path_factory.mktemp("vgbm3-runners"), silos, root,
                         insecure_http=True) as fed:
        client = jupyter_fed.connect(embedded=True,
                                     state_dir=tmp_path_factory.mktemp("vgbm3-coord"),
                                     runners=fed.runners)
        yield client, fed
        client.close()


def test_three_parties_regression_matches_sklearn(three) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    client, fed = three
    ids = {"id_columns": ["patient_id"]}
    tb = client.task_builder()
    prl = client.create_prl_session("link3", data_config={"clients": {
        "p0": ids, "p1": ids, "p2": ids}}).start()
    group = SessionTaskGroup(prl)
    for i in range(3):
        group.add_task(tb.prl(f"r{i}/r{i}_train", f"r{i}_test", client_name=f"p{i}"))
    group.start().wait(120)

    model = {"strategy": {"name": "VflGbm"}, "model": {"params": PARAMS},
             "ml_task": {"type": "regression"}, "key_bits": 1024}
    data = {c: {"label_client": c == "p2", "predictors": cols, "target": "y" if c == "p2"
                else None} for c, cols in COLS.items()}
    session = client.create_vfl_session("vgbm3", prl_session_id=prl.id, num_rounds=2,
                                        package_name="vfl_gbm", data_config=data,
                                        model_config=model).start()
    group = SessionTaskGroup(session)
    for i in range(3):
        group.add_task(tb.vfl_train(f"r{i}/r{i}_train", f"r{i}_test", client_name=f"p{i}"))
    group.start().wait(240)

    def joined(role: str) -> pd.DataFrame:
        frames = [pd.read_parquet(fed.data_root / f"r{i}_{role}.parquet") for i in range(3)]
        return frames[0].merge(frames[1], on="patient_id").merge(frames[2], on="patient_id")

    tr, te = joined("train"), joined("test")
    cols = [c for cs in COLS.values() for c in cs]
    central = HistGradientBoostingRegressor(**PARAMS, early_stopping=False).fit(
        tr[cols].to_numpy(), tr["y"].to_numpy())
    expected = r2_score(te["y"].to_numpy(), central.predict(te[cols].to_numpy()))
    final = session.metrics().as_dict()["federated_metrics"][-1]
    print(f"vfl_gbm r2 {final['r2']:.5f} vs sklearn {expected:.5f}")
    assert final["r2"] == pytest.approx(expected, abs=1e-3)
    importances = session.model().feature_importances()
    assert {k.split(":")[0] for k, v in importances.items() if v > 0} >= {"p0", "p1"}
