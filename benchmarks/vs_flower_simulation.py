"""jupyter-fed's simulation against Flower's simulation engine on the same task, in one run.

The HFL-15 task of ``vs_flower.py`` on simulated clients: 15 features, an MLP 15→6→6→6→2, plain
SGD (learning rate 0.2, batches of 64), one local epoch per round, every client scoring the
global model on the same test rows each round. One dataset of ``--rows`` rows is cut into IID
partitions (``jupyter_fed.simulation.partition``, seed 0) — the same row positions for both
tools — for 10 and for 100 clients. Each configuration runs both tools from a fresh process,
alternating, ``--runs`` times:

- **jupyter-fed**: ``client.simulate(..., engine="ray")`` (or ``--engines ray,dask``) on an
  embedded coordinator: virtual clients on 2 Ray actors (many clients per actor, one torch
  import per actor), the coordinator's own engine, FedAvg and metrics store;
Both train the same network from the same initial weights (ffnet's seeded ones, without its
standardisation layer, ``normalize: false``); only the order of batches differs.

- **Flower**: ``flwr.simulation.run_simulation`` (Ray backend, one CPU per virtual client on the
  same 2 CPUs) with the Message-API ``FedAvg``, train then evaluate each round; each Ray actor
  reads a partition once and caches it, as a Flower user's ClientApp would.

Reported per run and as medians: whole-process wall time (interpreter start to exit: imports,
Ray start-up and shut-down all count), the ratio jupyter-fed / Flower per pair, and the final
federated AUC. Target (issue 18): at 100 clients ≤ 0.5 × Flower's wall time, with equal AUC.

Run: ``pip install -e ".[bench,simulation]" && python benchmarks/vs_flower_simulation.py
[--runs 2] [--clients 10,100] [--engines ray]``; figures also go to
``benchmarks/results/vs_flower_simulation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hfl15 import (
    BATCH,
    FEATURES,
    HIDDEN,
    LR,
    by_value_into_ray_actors,
    load,
    local_epoch,
    scores,
    torch_net,
)

CPUS = 2
CONFIG = {"model": {"params": {"input_size": 15, "hidden_layer_sizes": HIDDEN, "output_size": 2}},
          "optimizer": {"name": "SGD", "params": {"learning_rate": LR}}, "batch_size": BATCH,
          "seed": 0, "normalize": False}
"""ffnet's configuration of the task: no standardisation layer, so both tools train the very same
network from the very same initial weights (Flower's start from ffnet's seeded ones)."""


# -- the driver ------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20_000, help="training rows in all")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", default="10,100")
    parser.add_argument("--engines", default="ray", help="jupyter-fed engines: ray, dask, local")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = _flower(args) if args.child == "flower" else _jupyter_fed(args, args.child)
        print("RESULT " + json.dumps(out), flush=True)
        return

    from jupyter_fed.demo.data import write_silos

    data = Path(tempfile.mkdtemp(prefix="vs-flower-sim-"))
    write_silos(data, rows=args.rows, clients=1, test_rows=2000)
    tools = [f"jupyter-fed:{e}" for e in args.engines.split(",")] + ["flower"]
    results: dict[str, Any] = {}
    for n in (int(c) for c in args.clients.split(",")):
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
        for i in range(args.runs):
            for tool in tools:
                res = _run_child(tool, data, n, args)
                runs[tool].append(res)
                print(f"{n:>4} clients  run {i + 1}  {tool:<18} process "
                      f"{res['process_seconds']:7.2f} s  AUC {res['auc']:.4f}", flush=True)
        summary: dict[str, Any] = {t: {k: statistics.median(r[k] for r in rs)
                                       for k in ("process_seconds", "auc")}
                                   for t, rs in runs.items()}
        for tool in tools[:-1]:
            ratios = [j["process_seconds"] / f["process_seconds"]
                      for j, f in zip(runs[tool], runs["flower"], strict=True)]
            summary[tool]["ratio_pairwise"] = ratios
            summary[tool]["ratio_median"] = statistics.median(ratios)
        results[str(n)] = {"runs": runs, "summary": summary}
    print()
    print(f"{'clients':>7}  {'tool':<18}{'process s':>10}{'AUC':>8}{'vs Flower':>11}")
    for n, res in results.items():
        for tool in tools:
            s = res["summary"][tool]
            ratio = f"{s['ratio_median']:.2f}x" if "ratio_median" in s else ""
            print(f"{n:>7}  {tool:<18}{s['process_seconds']:>10.2f}{s['auc']:>8.4f}{ratio:>11}")
    print("\ntarget: at 100 clients, jupyter-fed <= 0.5x Flower's wall time with equal AUC")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "vs_flower_simulation.json").write_text(json.dumps(
        {"args": {k: v for k, v in vars(args).items() if k not in ("data", "child", "n")},
         "results": results}, indent=2, default=str))


def _run_child(tool: str, data: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", tool, "--data", str(data), "--n", str(n),
           "--rounds", str(args.rounds)]
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "PYTHONWARNINGS": "ignore",
           "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - started
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{tool} run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return {**json.loads(line[len("RESULT "):]), "process_seconds": seconds}


def _partitions(data: Path, n: int) -> list[Any]:
    """The same IID row positions for both tools (the seed is fixed)."""
    import pyarrow.parquet as pq

    from jupyter_fed.simulation import partition

    rows = pq.read_metadata(data / "train_silo0.parquet").num_rows
    return partition(list(range(rows)), n, "iid", seed=0)


# -- jupyter-fed -----------------------------------------------------------------------------------
def _jupyter_fed(args: argparse.Namespace, tool: str) -> dict[str, Any]:
    import jupyter_fed

    engine = tool.split(":")[1]
    options = {"ray": {"num_cpus": CPUS}, "dask": {"workers": CPUS},
               "local": {"workers": 1}}[engine]
    client = jupyter_fed.connect(embedded=True,
                                 state_dir=Path(tempfile.mkdtemp(prefix="vs-flower-sim-jf-")))
    try:
        session = client.simulate(
            "ffnet", CONFIG, {"predictors": FEATURES, "target": "y"},
            dataset=args.data / "train_silo0.parquet", test=args.data / "test.parquet",
            partitions=[p.tolist() for p in _partitions(args.data, args.n)],
            num_rounds=args.rounds, engine=engine, engine_options=options)
        session.wait(1500)
        auc = session.metrics().as_dict()["federated_metrics"][-1]["roc_auc"]
    finally:
        client.close()
    return {"auc": auc}


# -- Flower ----------------------------------------------------------------------------------------
def _initial_net() -> Any:
    """The network with ffnet's seeded initial weights (same names: Linear layers 0, 2, …)."""
    import torch

    from jupyter_fed.packages.ffnet._net import initial_weights
    from jupyter_fed.packages.ffnet.config import FFNetConfig

    net = torch_net()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in
                         initial_weights(FFNetConfig.model_validate(CONFIG)).items()})
    return net


def _flower(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    by_value_into_ray_actors()
    train_path, test_path = str(args.data / "train_silo0.parquet"), str(args.data / "test.parquet")
    parts = [p.tolist() for p in _partitions(args.data, args.n)]
    n = args.n
    client_app, server_app = ClientApp(), ServerApp()
    record: dict[str, list[float]] = {"auc": []}

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        pid = int(context.node_config["partition-id"])
        x, y = load(train_path, parts[pid])
        net = torch_net()
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        local_epoch(net, x, y, int(msg.content["config"]["server-round"]) * 7 + pid)
        return Message(RecordDict({"arrays": ArrayRecord(net.state_dict()),
                                   "metrics": MetricRecord({"num-examples": len(y)})}),
                       reply_to=msg)

    @client_app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        x, y = load(test_path)
        net = torch_net()
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        loss, auc = scores(net, x, y)
        metrics = MetricRecord({"num-examples": len(y), "loss": loss, "auc": auc})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    def weighted_auc(replies: list[RecordDict], key: str) -> MetricRecord:
        ms = [r["metrics"] for r in replies]
        total = sum(float(m["num-examples"]) for m in ms)
        record["auc"].append(sum(float(m["auc"]) * float(m["num-examples"]) for m in ms) / total)
        return MetricRecord({"auc": record["auc"][-1]})

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=n,
                          min_evaluate_nodes=n, min_available_nodes=n,
                          evaluate_metrics_aggr_fn=weighted_auc)
        strategy.start(grid=grid, initial_arrays=ArrayRecord(_initial_net().state_dict()),
                       num_rounds=args.rounds)

    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=n,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": CPUS, "include_dashboard": False,
                                                 "log_to_driver": False,
                                                 "object_store_memory": 200 * 2**20}})
    return {"auc": record["auc"][-1] if record["auc"] else float("nan"), "aucs": record["auc"]}


if __name__ == "__main__":
    main()
