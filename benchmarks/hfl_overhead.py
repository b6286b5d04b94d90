"""Orchestration overhead of federated training, and federated vs centralized quality.

Two silos of 20,000 rows, 10 rounds of one local epoch, real runner processes on loopback.
Reports, from one run:

- total wall time (runner start included) and time inside local training steps;
- overhead ratio = Σ round wall time / Σ slowest local step per round (target ≤ 1.15), also
  without round 1, which carries each runner's one-off torch start-up;
- federated vs centralized AUC on the same test rows (target: within 0.01).

Run: ``python benchmarks/hfl_overhead.py [--rows 20000 --rounds 10 --clients 2]``; a JSON copy of
the figures goes to ``benchmarks/results/hfl_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()

    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.baseline import DEMO_DATA_CONFIG, centralized_baseline, score_on_test
    from jupyter_fed.demo.cli import demo_model_config
    from jupyter_fed.demo.data import write_silos
    from jupyter_fed.demo.federation import LocalFederation

    work = Path(tempfile.mkdtemp(prefix="hfl-bench-"))
    paths = write_silos(work / "data", rows=args.rows, clients=args.clients)
    silos = {f"silo{i}": {f"train_silo{i}": paths[f"train_silo{i}"], "test": paths["test"]}
             for i in range(args.clients)}
    cfg = demo_model_config()
    with LocalFederation(work / "runners", silos, work / "data") as fed:
        t_up = time.perf_counter() - started
        client = jupyter_fed.connect(embedded=True, state_dir=work / "coord", runners=fed.runners)
        t0 = time.perf_counter()
        session = client.create_fl_session(
            name="bench", min_num_clients=args.clients, num_rounds=args.rounds,
            package_name="ffnet", model_config=cfg, data_config=DEMO_DATA_CONFIG).start()
        tb, group = client.task_builder(), SessionTaskGroup(session)
        for i in range(args.clients):
            group.add_task(tb.hfl(f"train_silo{i}", "test", runner=f"silo{i}"))
        group.start().wait(600, 0.1)
        fed_seconds = time.perf_counter() - t0
        total_seconds = time.perf_counter() - started
        rounds = [r["info"] for r in session.rounds() if "duration" in r["info"]]
        weights = session.model().weights
        client.close()

    fed_scores = score_on_test(weights, cfg, paths["test"])
    central = centralized_baseline([paths[f"train_silo{i}"] for i in range(args.clients)], cfg,
                                   args.rounds)
    central_w, central_seconds = central.weights, central.seconds
    central_scores = score_on_test(central_w, cfg, paths["test"])

    round_time = sum(r["duration"] for r in rounds)
    local_time = sum(r["local_seconds"] for r in rounds)
    steady = rounds[1:] or rounds
    figures = {
        "rows_per_silo": args.rows, "clients": args.clients, "rounds": args.rounds,
        "runners_up_seconds": round(t_up, 3),
        "federated_session_seconds": round(fed_seconds, 3),
        "total_wall_seconds_incl_runner_start": round(total_seconds, 3),
        "local_training_seconds": round(local_time, 3),
        "overhead_ratio": round(round_time / local_time, 4),
        "overhead_ratio_without_round_1": round(sum(r["duration"] for r in steady)
                                                / sum(r["local_seconds"] for r in steady), 4),
        "mean_overhead_ms_per_round": round(1000 * (round_time - local_time) / len(rounds), 2),
        "federated_auc": round(fed_scores["auc"], 4),
        "centralized_auc": round(central_scores["auc"], 4),
        "auc_gap": round(abs(fed_scores["auc"] - central_scores["auc"]), 4),
        "centralized_seconds": round(central_seconds, 3),
    }
    width = max(map(len, figures))
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "hfl_overhead.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
