"""VFL-GLM with two passive parties: three real runners, a real three-way linkage, the Poisson
family (the generated label as a count) — every party's coefficients reach the pooled fit."""

from __future__ import annotations

import time

import pandas as pd

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.data import write_vertical
from jupyter_fed.demo.federation import LocalFederation
from jupyter_fed.packages.vfl_glm.baseline import fit_pooled

COLS = {"a": [f"x{i}" for i in range(5)], "b": [f"x{i}" for i in range(5, 10)],
        "c": [f"x{i}" for i in range(10, 15)]}


def test_three_parties_reach_the_pooled_poisson_fit(tmp_path) -> None:
    paths = write_vertical(tmp_path / "gen", rows=1200, parties=3, overlap=0.9, test_rows=300)
    silos = {f"r{c}": {f"{c}_{role}": {"path": paths[f"party{i}"][role],
                                       "id_columns": ["patient_id"]}
                       for role in ("train", "test")} for i, c in enumerate("abc")}
    with LocalFederation(tmp_path / "runners", silos, tmp_path, insecure_http=True) as fed:
        client = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coord",
                                     runners=fed.runners)
        tb = client.task_builder()
        ids = {"id_columns": ["patient_id"]}
        prl = client.create_prl_session("link", data_config={"clients": {c: ids for c in "abc"}}
                                        ).start()
        group = SessionTaskGroup(prl)
        for c in "abc":
            group.add_task(tb.prl(f"r{c}/{c}_train", f"{c}_test", client_name=c))
        group.start().wait(120)

        model = {"strategy": {"name": "VflGlm"}, "ml_task": {"type": "poisson"},
                 "model": {c: {"params": {"input_size": 5, "output_activation": "exp"}}
                           for c in "abc"},
                 "release_coefficients": True}
        data = {c: {"label_client": c == "c", "predictors": COLS[c],
                    "target": "y" if c == "c" else None} for c in "abc"}
        started = time.perf_counter()
        session = client.create_vfl_session("glm3", prl_session_id=prl.id, num_rounds=40,
                                            package_name="iai_glm", data_config=data,
                                            model_config=model).start()
        group = SessionTaskGroup(session)
        for c in "abc":
            group.add_task(tb.vfl_train(f"r{c}/{c}_train", f"{c}_test", client_name=c))
        group.start().wait(180)
        seconds = time.perf_counter() - started
        got = session.model().coefficients()
        rounds = session.model().meta["rounds"]
        final = session.metrics().as_dict()["federated_metrics"][-1]
        client.close()  # (an embedded coordinator: nothing more is read through it)

    frames = [pd.read_parquet(paths[f"party{i}"]["train"]) for i in range(3)]
    joined = frames[0].merge(frames[1], on="patient_id").merge(frames[2], on="patient_id")
    pooled = fit_pooled(joined, [c for cs in COLS.values() for c in cs], "y", "poisson")
    worst = max(abs(got[k] - pooled[k]) for k in pooled)
    print(f"three parties, poisson: {rounds} rounds in {seconds:.1f} s, "
          f"max |coef - pooled| {worst:.2e}")
    assert worst < 1e-3
    assert "r2" in final
