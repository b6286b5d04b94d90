"""jupyter-fed against Flower's simulation engine on the same task, as installed, in one run.

The HFL-15 task: 15 features, two silos of 20,000 rows, an MLP 15→6→6→6→2, plain SGD (learning
rate 0.2, batches of 64), one local epoch per round, 10 rounds, every client scoring the global
model on the same 4,000 test rows each round. Both tools run it from a fresh process, alternating,
``--runs`` times each:

- **jupyter-fed**: two real runner processes on loopback with TLS, the coordinator embedded in the
  driving process, the SDK as a user calls it;
- **Flower**: ``flwr.simulation.run_simulation`` (Ray backend, one CPU per virtual client) with the
  Message-API ``FedAvg`` strategy, train then evaluate each round.

Reported per run and as medians: whole-process wall time (interpreter start to exit, so imports,
runner or Ray start-up and shut-down all count), the ratio jupyter-fed / Flower per pair, the
per-round orchestration overhead of each (round wall time minus the slowest client's compute in
that round), the final federated AUC, and for jupyter-fed the local training speed against a bare
torch loop over the same rows in the same process. Targets (issue 10): whole process ≤ 0.5 ×
Flower's, overhead ≤ 0.02 s per round, AUC ≥ Flower's, local training ≥ 75 % of the bare loop.

Run: ``pip install -e ".[bench]" && python benchmarks/vs_flower.py [--runs 3]``; figures also go to
``benchmarks/results/vs_flower.json``.
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


# -- the driver ------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--child", choices=["jupyter-fed", "flower"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = _jupyter_fed(args) if args.child == "jupyter-fed" else _flower(args)
        print("RESULT " + json.dumps(out), flush=True)
        return

    from jupyter_fed.demo.data import write_silos

    data = Path(tempfile.mkdtemp(prefix="vs-flower-"))
    write_silos(data, rows=args.rows, clients=2, test_rows=4000)
    runs: dict[str, list[dict[str, Any]]] = {"jupyter-fed": [], "flower": []}
    for i in range(args.runs):
        for tool in ("jupyter-fed", "flower"):
            res = _run_child(tool, data, args)
            runs[tool].append(res)
            print(f"run {i + 1} {tool:<12} process {res['process_seconds']:6.2f} s  overhead/round "
                  f"{res['overhead_per_round']:.4f} s  AUC {res['auc']:.4f}", flush=True)
    ratios = [j["process_seconds"] / f["process_seconds"]
              for j, f in zip(runs["jupyter-fed"], runs["flower"], strict=True)]
    summary = {tool: {k: statistics.median(r[k] for r in rs)
                      for k in ("process_seconds", "overhead_per_round", "auc")}
               for tool, rs in runs.items()}
    # The floor, measured here (not inside a timed child): one epoch in plain torch, rows in memory.
    bare = _bare_loop_seconds(data / "train_silo0.parquet", repeats=5)
    train = statistics.median(r["train_seconds_per_round"] for r in runs["jupyter-fed"])
    summary["jupyter-fed"]["bare_loop_seconds"] = bare
    summary["jupyter-fed"]["train_speed_vs_bare_loop"] = bare / train
    summary["ratio_process_pairwise"] = ratios
    summary["ratio_process_median"] = statistics.median(ratios)
    print()
    print(f"{'':<14}{'process s':>10}{'overhead/round s':>18}{'AUC':>8}")
    for tool in ("jupyter-fed", "flower"):
        s = summary[tool]
        print(f"{tool:<14}{s['process_seconds']:>10.2f}{s['overhead_per_round']:>18.4f}"
              f"{s['auc']:>8.4f}")
    print(f"\nwhole process jupyter-fed / Flower, pair by pair: "
          f"{', '.join(f'{r:.2f}' for r in ratios)} (median {summary['ratio_process_median']:.2f}; "
          "target <= 0.5)")
    print(f"jupyter-fed local training at {summary['jupyter-fed']['train_speed_vs_bare_loop']:.0%} "
          "of a bare torch loop over the same rows (target >= 75%)")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "vs_flower.json").write_text(json.dumps({"args": vars(args) | {"data": None},
                                                         "runs": runs, "summary": summary},
                                                        indent=2, default=str))


def _run_child(tool: str, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", tool, "--data", str(data), "--rows",
           str(args.rows), "--rounds", str(args.rounds)]
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "PYTHONWARNINGS": "ignore"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    seconds = time.perf_counter() - started
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{tool} run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return {**json.loads(line[len("RESULT "):]), "process_seconds": seconds}


# -- jupyter-fed -----------------------------------------------------------------------------------
def _jupyter_fed(args: argparse.Namespace) -> dict[str, Any]:
    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation

    data: Path = args.data
    silos = {f"silo{i}": {f"train_silo{i}": data / f"train_silo{i}.parquet",
                          "test": data / "test.parquet"} for i in range(2)}
    cfg = {"model": {"params": {"input_size": 15, "hidden_layer_sizes": HIDDEN, "output_size": 2}},
           "optimizer": {"name": "SGD", "params": {"learning_rate": LR}}, "batch_size": BATCH,
           "seed": 0}
    work = Path(tempfile.mkdtemp(prefix="vs-flower-jf-"))
    with LocalFederation(work / "runners", silos, data) as fed:
        client = jupyter_fed.connect(embedded=True, state_dir=work / "coord", runners=fed.runners)
        session = client.create_fl_session(
            name="hfl15", min_num_clients=2, num_rounds=args.rounds, package_name="ffnet",
            model_config=cfg, data_config={"predictors": FEATURES, "target": "y"}).start()
        group, tb = SessionTaskGroup(session), client.task_builder()
        for i in range(2):
            group.add_task(tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}"))
        group.start().wait(600, 0.05)
        rounds = [r["info"] for r in session.rounds() if "duration" in r["info"]]
        auc = session.metrics().as_dict()["federated_metrics"][-1]["roc_auc"]
        train = [max(t["train_seconds"] for t in r["train"].values()) for r in rounds]
        client.close()
    overhead = sum(r["duration"] - r["local_seconds"] for r in rounds) / len(rounds)
    return {"overhead_per_round": overhead, "auc": auc,
            "train_seconds_per_round": statistics.median(train)}


def _bare_loop_seconds(path: Path, repeats: int) -> float:
    """One epoch of the same network in plain torch over rows already in memory (the floor)."""
    import torch

    torch.set_num_threads(1)  # as each runner's step
    x, y = load(str(path))
    net = torch_net()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        local_epoch(net, x, y)
        times.append(time.perf_counter() - started)
    return min(times)


# -- Flower ----------------------------------------------------------------------------------------
def _flower(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    by_value_into_ray_actors()
    data = str(args.data)
    client_app = ClientApp()
    server_app = ServerApp()
    record: dict[str, list[float]] = {"train": [], "eval": [], "auc": []}

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        started = time.perf_counter()
        pid = int(context.node_config["partition-id"])
        x, y = load(f"{data}/train_silo{pid}.parquet")
        net = torch_net()
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        local_epoch(net, x, y, int(msg.content["config"]["server-round"]) * 7 + pid)
        metrics = MetricRecord({"num-examples": len(y),
                                "compute-seconds": time.perf_counter() - started})
        return Message(RecordDict({"arrays": ArrayRecord(net.state_dict()), "metrics": metrics}),
                       reply_to=msg)

    @client_app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        started = time.perf_counter()
        x, y = load(f"{data}/test.parquet")
        net = torch_net()
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        loss, auc = scores(net, x, y)
        metrics = MetricRecord({"num-examples": len(y), "loss": loss, "auc": auc,
                                "compute-seconds": time.perf_counter() - started})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    def slowest(kind: str) -> Any:
        def aggregate(replies: list[RecordDict], key: str) -> MetricRecord:
            ms = [r["metrics"] for r in replies]
            record[kind].append(max(float(m["compute-seconds"]) for m in ms))
            if kind == "eval":
                n = sum(float(m["num-examples"]) for m in ms)
                record["auc"].append(sum(float(m["auc"]) * float(m["num-examples"])
                                         for m in ms) / n)
            return MetricRecord({"compute-seconds": record[kind][-1]})
        return aggregate

    timing: dict[str, float] = {}

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        torch.manual_seed(0)
        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=2,
                          min_evaluate_nodes=2, min_available_nodes=2,
                          train_metrics_aggr_fn=slowest("train"),
                          evaluate_metrics_aggr_fn=slowest("eval"))
        started = time.perf_counter()
        strategy.start(grid=grid, initial_arrays=ArrayRecord(torch_net().state_dict()),
                       num_rounds=args.rounds)
        timing["rounds"] = time.perf_counter() - started

    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=2,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": 2, "include_dashboard": False,
                                                 "log_to_driver": False}})
    compute = sum(record["train"]) + sum(record["eval"])
    return {"overhead_per_round": (timing["rounds"] - compute) / args.rounds,
            "auc": record["auc"][-1] if record["auc"] else float("nan"),
            "train_seconds_per_round": statistics.median(record["train"])}


if __name__ == "__main__":
    main()
