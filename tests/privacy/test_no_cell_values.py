"""Attack #4: a cell value in an error message (``could not convert string to float:
'SSN-123-45-6700'``, returned to the caller, also through a DP fit on a ``require_dp`` dataset).

Distinctive strings are seeded in every column kind; every way of making a runner read them
wrongly is tried — directly over HTTP as a hostile client would, and through sessions — and no
response body, no log line the coordinator received, no audit entry may contain any of them.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from attack import log_text, register, run_analytics, task_outcome
from helpers import model_config

from jupyter_fed import SessionTaskGroup
from jupyter_fed.packages.ffnet import _net
from jupyter_fed.packages.ffnet.config import parse
from jupyter_fed.wire import encode

SECRETS = ["SSN-123-45-6700", "Zebulon-Quixote", "987654.321", "424242", "31337.5"]


@pytest.fixture(scope="module")
def secret_datasets(fed, privacy_root) -> dict[str, str]:
    rng = np.random.default_rng(4)
    n = 300
    df = pd.DataFrame({
        "ssn": [f"SSN-123-45-{6700 + i}" for i in range(n)],          # id (text)
        "name": ["Zebulon-Quixote"] + [f"person-{i}" for i in range(1, n)],  # id (text)
        "amount": np.r_[987654.321, rng.normal(100, 10, n - 1)],      # numeric
        "visits": np.r_[424242, rng.integers(0, 9, n - 1)].astype(np.int64),  # integer
        "flag": (rng.random(n) < 0.5).astype(np.int64),                # binary
        "level": rng.integers(0, 3, n).astype(np.int64),               # label
        "score": np.r_[31337.5, rng.normal(0, 1, n - 1)],              # numeric
        "y": (rng.random(n) < 0.5).astype(np.int64)})
    path = privacy_root / f"secrets_{uuid.uuid4().hex[:6]}.parquet"
    df.to_parquet(path, index=False)
    plain = register(fed, "p0", {"name": "secrets", "path": str(path),
                                 "id_columns": ["ssn", "name"]})
    dp = register(fed, "p0", {"name": "secrets_dp", "path": str(path),
                              "id_columns": ["ssn", "name"]}, {"require_dp": True})
    return {"plain": plain, "dp": dp}


def _fit_spec(dataset: str, predictors: list[str], target: str, dp: bool = False
              ) -> tuple[dict[str, Any], bytes]:
    mc = model_config(model={"params": {"input_size": len(predictors),
                                        "hidden_layer_sizes": [4], "output_size": 2}},
                      **({"differential_privacy_params": {"epsilon": 5, "max_grad_norm": 1}}
                         if dp else {}))
    dc = {"predictors": predictors, "target": target}
    weights = encode(_net.initial_weights(parse(mc, dc)[0]))
    spec = {"task_id": f"t-{uuid.uuid4().hex[:10]}", "session_id": "s", "round": 1,
            "package": "ffnet", "step": "fit", "datasets": {"train": dataset},
            "params": {"model_config": mc, "data_config": dc, "num_rounds": 1}}
    return spec, weights


def test_no_cell_value_leaves_in_any_message(fed, new_client, secret_datasets) -> None:
    client = new_client()
    texts: list[str] = []
    with fed.processes["p0"].http(client.tokens["p0"], timeout=60) as http:
        for dataset, dp in ((secret_datasets["plain"], False), (secret_datasets["dp"], True)):
            for predictors in (["amount", "ssn"], ["name"], ["visits", "score"]):
                spec, weights = _fit_spec(dataset, predictors, "y", dp)
                out = task_outcome(http, spec, weights)
                texts += out["texts"]
            spec, weights = _fit_spec(dataset, ["score"], "amount", dp)  # not class labels
            texts += task_outcome(http, spec, weights)["texts"]
        for query in ({"filter": "ssn > 1"}, {"columns": ["name"]}, {"condition_on": ["amount"]}):
            spec = {"task_id": f"t-{uuid.uuid4().hex[:10]}", "session_id": "s", "round": 1,
                    "package": "stats", "step": "compute", "datasets": {"data": "secrets"},
                    "params": {"data_config": {"secrets": [], **query}, "model_config": {},
                               "dataset": "secrets"}}
            texts += task_outcome(http, spec)["texts"]
    # and through sessions, whose logs are what the coordinator keeps of each runner's words
    session = client.create_fl_session(name="leak", min_num_clients=1, num_rounds=1,
                                       model_config=model_config(
                                           model={"params": {"input_size": 2, "output_size": 2}}),
                                       data_config={"predictors": ["amount", "score"],
                                                    "target": "visits"}).start()
    try:
        SessionTaskGroup(session).add_task(client.task_builder().hfl("secrets", runner="p0")
                                           ).start().wait(60)
    except Exception as exc:  # the refusal is expected; its words are checked below
        texts.append(str(exc))
    texts.append(log_text(session))
    for query in ({"secrets": [], "filter": "amount > 1000"},
                  {"secrets": ["amount", "visits", "score", "flag", "level"]}):
        texts.append(log_text(run_analytics(client, "stats", ["secrets"], query)))
    eda = run_analytics(client, "eda", ["secrets"], {"secrets": []},
                        {"epsilon": 5, "categorical": ["visits"]})
    texts.append(log_text(eda))
    with fed.processes["p0"].http(timeout=60) as admin:
        texts.append(admin.get("/v1/audit", params={"limit": 10_000}).text)

    everything = "\n".join(texts)
    assert "failed" in everything and "secrets" in everything  # the attempts did fail, by name
    leaked = [s for s in SECRETS if s in everything]
    assert not leaked, f"cell values in messages: {leaked}"


def test_a_file_that_changed_under_its_registration_is_named_not_quoted(tmp_path) -> None:
    """A csv registered as numbers that later holds text: the column is named, the cell not."""
    from jupyter_fed.errors import DatasetError
    from jupyter_fed.runner.data import LoadedDataset, inspect

    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},{2 * i}\n" for i in range(100)))
    info = inspect("t", path)
    path.write_text(path.read_text() + "5,SSN-123-45-6700\n")
    handle = LoadedDataset(info, None, path)

    for read in (lambda: list(handle.iter_batches(["a", "b"], 10)),
                 lambda: handle.to_numpy(["a", "b"])):
        with pytest.raises(DatasetError) as err:
            read()
        assert "column 'b'" in err.value.message and "SSN" not in str(err.value)
