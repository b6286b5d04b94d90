"""``jupyter-fed demo``: two silos, one federated network, compared with central training."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_fed.demo.baseline import DEMO_DATA_CONFIG, centralized_baseline, score_on_test
from jupyter_fed.demo.data import FEATURES, write_silos


def demo_model_config(seed: int = 0) -> dict[str, Any]:
    """The demo's FFNet: the reference tutorial's shape with a slightly wider network."""
    return {
        "strategy": {"name": "FedAvg", "params": {}},
        "model": {"params": {"input_size": len(FEATURES), "hidden_layer_sizes": [16, 8],
                             "output_size": 2, "activation": "relu"}},
        "ml_task": {"type": "classification", "params": {}},
        "optimizer": {"name": "SGD", "params": {"learning_rate": 0.1, "momentum": 0.9}},
        "local_epochs": 1,
        "batch_size": 64,
        "seed": seed,
    }


def add_demo_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="train an FFNet across local demo runners and compare it with "
                       "central training")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--rows", type=int, default=20_000, help="training rows per silo")
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("jupyter-fed-demo"),
                   help="folder for the data, the metrics PNG and the runners' logs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    import jupyter_fed
    from jupyter_fed.client import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation

    t0 = time.perf_counter()
    out: Path = args.out.absolute()
    data_dir = out / "data"
    paths = write_silos(data_dir, rows=args.rows, clients=args.clients, seed=7 + args.seed)
    work = Path(tempfile.mkdtemp(prefix="runners-", dir=out))
    silos = {f"silo{i}": {f"train_silo{i}": paths[f"train_silo{i}"], "test": paths["test"]}
             for i in range(args.clients)}
    model_config = demo_model_config(args.seed)
    print(f"jupyter-fed demo: {args.clients} silos x {args.rows:,} rows, {args.rounds} rounds",
          flush=True)
    try:
        with LocalFederation(work / "runners", silos, data_dir) as fed:
            print("runners up: " + ", ".join(f"{p.name} at {p.url}" for p in fed.processes.values()),
                  flush=True)
            client = jupyter_fed.connect(embedded=True, state_dir=work / "coordinator",
                                         runners=fed.runners)
            try:
                fed_start = time.perf_counter()
                session = client.create_fl_session(
                    name="demo", description="FFNet across demo silos",
                    min_num_clients=args.clients, num_rounds=args.rounds, package_name="ffnet",
                    model_config=model_config, data_config=DEMO_DATA_CONFIG).start()
                builder = client.task_builder()
                group = SessionTaskGroup(session)
                for i in range(args.clients):
                    group.add_task(builder.hfl(train_dataset_name=f"train_silo{i}",
                                               test_dataset_name="test", runner=f"silo{i}"))
                group.start()
                _follow(session)
                fed_seconds = time.perf_counter() - fed_start
                model = session.model()
                metrics = session.metrics()
                warnings = session.info()["warnings"]
            finally:
                client.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fed_scores = score_on_test(model.weights, model_config, paths["test"])
    central = centralized_baseline([paths[f"train_silo{i}"] for i in range(args.clients)],
                                   model_config, args.rounds, test=paths["test"])
    central_scores = score_on_test(central.weights, model_config, paths["test"])
    png = out / "demo_metrics.png"
    metrics.plot(baseline=central.curve, baseline_label="centralized (pooled rows)",
                 title=_title(model_config, args)).savefig(png, dpi=110)
    print()
    print(f"{'':<13}{'AUC':>8}{'accuracy':>10}{'wall time':>11}")
    print(f"{'federated':<13}{fed_scores['auc']:>8.4f}{fed_scores['accuracy']:>10.4f}"
          f"{fed_seconds:>10.2f}s")
    print(f"{'centralized':<13}{central_scores['auc']:>8.4f}{central_scores['accuracy']:>10.4f}"
          f"{central.seconds:>10.2f}s")
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"\nmetric curves: {png}")
    print(f"total demo time {time.perf_counter() - t0:.1f} s (runner start included)")
    return 0


def _title(model_config: dict[str, Any], args: argparse.Namespace) -> str:
    p = model_config["model"]["params"]
    layers = "→".join(str(n) for n in [p["input_size"], *p["hidden_layer_sizes"], p["output_size"]])
    return (f"FFNet {layers} trained with {model_config['strategy']['name']} on {args.clients} "
            f"silos × {args.rows:,} rows, {args.rounds} rounds")


def _follow(session: Any) -> None:
    """A live bar on a terminal; one line per round otherwise (a log file gets no redraws)."""
    import sys

    if sys.stdout.isatty():
        session.wait(progress=True, poll=0.2)
        return
    seen = 0
    while True:
        info = session.wait_round(after_round=seen, timeout=30)
        rnd, total = min(info["current_round"], info["num_rounds"]), info["num_rounds"]
        if rnd > seen:
            fed = session.metrics().federated
            shown = ", ".join(f"{k} {v:.4f}" for k, v in (fed[-1] if fed else {}).items()
                              if k in ("loss", "roc_auc"))
            print(f"round {rnd}/{total} done" + (f"; model {len(fed) - 1} {shown}" if shown
                                                 else ""), flush=True)
            seen = rnd
        if info["status"] in ("completed", "failed", "cancelled", "interrupted"):
            session.wait(0)  # raises with the reason if it failed
            return
