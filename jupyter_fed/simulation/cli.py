"""``jupyter-fed simulate``: a package on simulated clients from the command line.

Reads a dataset file, partitions it, runs the session on an embedded coordinator (in a temporary
state folder unless ``--state-dir``) and prints the federated metrics of every model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_simulate_command"]


def add_simulate_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("simulate", help="run a package on simulated clients: partitions of one "
                       "dataset, the same package code and plan as on runners")
    p.add_argument("package", help="the algorithm, e.g. ffnet or glm")
    p.add_argument("--dataset", type=Path, required=True, help="parquet or csv file to partition")
    p.add_argument("--test", type=Path, default=None,
                   help="parquet or csv file every client evaluates on (default: its own rows)")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML or JSON file: model_config and data_config sections, or flat as a "
                   "%%%%federate body (predictors and target go to data_config)")
    p.add_argument("--target", default=None, help="the target column (data_config.target)")
    p.add_argument("--clients", type=int, default=None, help="simulated clients")
    p.add_argument("--partition", default="iid",
                   help="iid (default), dirichlet:ALPHA or column:NAME")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--engine", default="local", choices=["local", "ray", "dask"])
    p.add_argument("--workers", type=int, default=None,
                   help="local threads, Dask workers or Ray actors (default: the engine's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the partitioning")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="keep the coordinator's database and models here (default: temporary)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=run_simulate)


def _configs(args: argparse.Namespace, columns: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    import yaml

    from jupyter_fed.errors import ConfigError
    from jupyter_fed.packages import get_package

    body: dict[str, Any] = {}
    if args.config is not None:
        body = yaml.safe_load(args.config.read_text()) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"{args.config} holds no mapping", "write key: value lines")
    notebook = get_package(args.package).notebook
    if "model_config" in body or "data_config" in body:
        model, data = dict(body.get("model_config") or {}), dict(body.get("data_config") or {})
    else:
        data = {k: body.pop(k) for k in notebook.data_keys if k in body}
        model = body
    if args.target:
        data["target"] = args.target
    if notebook.predictors and "predictors" not in data and isinstance(data.get("target"), str):
        data["predictors"] = [c for c in columns if c != data["target"]]
    if notebook.input_size and isinstance(data.get("predictors"), list):
        *path, last = notebook.input_size.split(".")
        node = model
        for key in path:
            node = node.setdefault(key, {})
        node.setdefault(last, len(data["predictors"]))
    return model, data


def run_simulate(args: argparse.Namespace) -> int:
    import tempfile
    import time

    from jupyter_fed.client import connect
    from jupyter_fed.simulation._data import as_table

    table = as_table(args.dataset)
    model, data = _configs(args, list(table.column_names))
    options: dict[str, Any] = {}
    if args.workers:
        options = {"actors": args.workers} if args.engine == "ray" else {"workers": args.workers}
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="jupyter-fed-simulate-"))
    started = time.perf_counter()
    client = connect(embedded=True, state_dir=state)
    try:
        session = client.simulate(args.package, model, data, dataset=table, test=args.test,
                                  partitions=args.partition, num_clients=args.clients,
                                  num_rounds=args.rounds, engine=args.engine,
                                  engine_options=options, seed=args.seed)
        session.wait(progress=not args.json)
        info, metrics = session.info(), session.metrics().as_dict()
    finally:
        client.close()
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({"session_id": info["id"], "simulation": info["simulation"],
                          "seconds": seconds, "federated_metrics": metrics["federated_metrics"]}))
        return 0
    sim = info["simulation"]
    print(f"session {info['id']}: {info['package']} on {sim['num_clients']} simulated clients "
          f"({sim['partition']}, {sim['engine']} engine, {sim['hosts']} host(s)), "
          f"{info['num_rounds']} round(s) in {seconds:.1f} s")
    rows = metrics["federated_metrics"]
    keys = sorted({k for r in rows for k in r})
    print("model " + " ".join(f"{k:>10}" for k in keys))
    for i, r in enumerate(rows):
        print(f"{i:>5} " + " ".join(f"{r[k]:>10.4f}" if isinstance(r.get(k), float)
                                    else f"{r.get(k, ''):>10}" for k in keys))
    if args.state_dir:
        print(f"the model is in {args.state_dir}: jupyter_fed.connect(state_dir=...)"
              f".session({info['id']!r}).model()")
    return 0
