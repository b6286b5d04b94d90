"""``POST /simulations``: the SDK over REST starts a simulated session the server hosts, so it is
listed, waited on and its model fetched like any other; refused bodies name the field."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import DATA_CONFIG

import jupyter_fed
from jupyter_fed.demo.data import _rows

API = "jupyter-fed/api/v1"


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame(_rows(np.random.default_rng(seed), rows, 0.0))


def _simulate(client: Any) -> dict[str, Any]:
    cfg = {"model": {"params": {"input_size": 15, "hidden_layer_sizes": [8], "output_size": 2}},
           "seed": 1}
    session = client.simulate("ffnet", cfg, DATA_CONFIG, dataset=frame(600),
                              test=frame(200, seed=1), partitions="dirichlet:1.0",
                              num_clients=3, num_rounds=2, seed=1)
    session.wait(120)
    return {"id": session.id, "status": session.status(), "info": session.info(),
            "metrics": session.metrics().as_dict(), "listed": [s.id for s in client.sessions()],
            "prob": session.model().predict(frame(50, seed=2)).shape}


async def test_simulate_over_rest_runs_on_the_servers_coordinator(server_url: str,
                                                                   server_token: str) -> None:
    rest = await asyncio.to_thread(jupyter_fed.connect, server_url, token=server_token)
    try:
        out = await asyncio.to_thread(_simulate, rest)
    finally:
        rest.close()

    assert out["status"] == "completed"
    assert out["info"]["simulation"]["num_clients"] == 3
    assert out["id"] in out["listed"]  # the server's session list (what the sidebar shows)
    assert len(out["metrics"]["federated_metrics"]) == 3
    assert out["prob"] == (50, 2)


@pytest.mark.parametrize("body, field", [
    ({"package_name": "ffnet", "dataset_parquet": "not base64!"}, "dataset_parquet"),
    ({"package_name": "ffnet", "dataset_parquet": "", "engine": "spark"}, "engine"),
])
async def test_a_bad_simulation_body_is_refused_naming_the_field(jp_fetch: Any, body: dict[str, Any],
                                                                 field: str) -> None:
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(API, "simulations", method="POST", body=json.dumps(body))

    assert err.value.code == 422
    answer = json.loads(err.value.response.body)
    assert field in {d["field"] for d in answer.get("details", [])}, answer
