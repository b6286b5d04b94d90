"""Per-round orchestration overhead as the number of clients grows (issue 18's flat-overhead target).

Overhead of a round = its wall time, commit to commit (dispatch, every client's step, validation, aggregation,
metrics, the checkpoint and its commit) minus the time clients spent inside their steps. Two
set-ups, both ffnet with a small model (15 features, hidden 16-8) and one local epoch on small
partitions, so what is measured is the coordinator, not training:

- ``simulated``: ``client.simulate(..., engine="local")`` — N lightweight clients behind the
  simulation transport, their steps one after another on one in-process host; overhead = round
  time − Σ client step seconds. Target: ≤ 0.03 s a round at 100 clients.
- ``real``: N real runner processes on loopback (``LocalFederation``), one silo each; clients
  run at once, so overhead = round time − the slowest client's step. On this 2-core machine
  16 runners compete for the cores, which the slowest step absorbs. Round 1 is reported apart
  (the session waits for every runner to report ready before it, so it should not differ).
  Also reported: CPU per steady round of the coordinator (this process), of the runner
  processes, and of their workers (the steps) — on 2 cores, what the round needs of them.

Reported per client count: median and max overhead per round over rounds 2..R, round 1's
overhead, and per-client cost (median overhead / clients).

Run: ``python benchmarks/many_clients.py [--mode simulated|real|both] [--clients 10,25,50,100]
[--real-clients 2,4,8,16] [--rounds 6]``; figures also go to
``benchmarks/results/many_clients.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

FEATURES = [f"x{i}" for i in range(15)]
DATA_CONFIG = {"predictors": FEATURES, "target": "y"}
CONFIG = {"model": {"params": {"input_size": len(FEATURES), "hidden_layer_sizes": [16, 8],
                               "output_size": 2}},
          "optimizer": {"name": "SGD", "params": {"learning_rate": 0.1}}, "batch_size": 64,
          "local_epochs": 1, "seed": 0}


def frame(rows: int, seed: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = (x[:, :3].sum(axis=1) + rng.normal(0, 1, rows) > 0).astype(np.int64)
    df = pd.DataFrame(x, columns=FEATURES)
    df["y"] = y
    return df


def round_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each training round's info with ``wall``: from the previous round's commit to its own, so
    the checkpoint, the artefact and the store's transaction count as well as the step."""
    from datetime import datetime

    at = {r["round"]: datetime.fromisoformat(r["committed_at"]).timestamp() for r in rows}
    return [{**r["info"], "wall": at[r["round"]] - at[r["round"] - 1]} for r in rows
            if "duration" in r["info"] and r["round"] - 1 in at]


def summarise(rows: list[dict[str, Any]], local_key: str, clients: int) -> dict[str, Any]:
    fit = round_times(rows)
    over = [r["wall"] - r[local_key] for r in fit]
    steady = over[1:] or over
    return {"clients": clients, "rounds": len(fit),
            "round1_overhead_s": round(over[0], 4),
            "median_overhead_s": round(statistics.median(steady), 4),
            "max_overhead_s": round(max(steady), 4),
            "per_client_ms": round(1000 * statistics.median(steady) / clients, 3),
            "median_round_s": round(statistics.median(r["wall"] for r in fit[1:] or fit), 4),
            "median_local_s": round(statistics.median(r[local_key] for r in fit[1:] or fit), 4)}


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process (the embedded coordinator), by
    the runner processes it started, and by their workers and fork servers (the steps): read
    from ``/proc``, Linux only."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    me = os.getpid()
    runners = {pid for pid, (ppid, _) in stats.items() if ppid == me}
    out = {"coordinator": stats.get(me, (0, 0.0))[1], "runners": 0.0, "workers": 0.0}
    for pid, (ppid, cpu) in stats.items():
        if pid in runners:
            out["runners"] += cpu
        else:
            up = ppid
            while up in stats and up not in runners and up != me:
                up = stats[up][0]
            if up in runners:
                out["workers"] += cpu
    return out


def simulated(counts: list[int], rounds: int, rows_per_client: int) -> list[dict[str, Any]]:
    import jupyter_fed

    out = []
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="many-sim-") as tmp:
            client = jupyter_fed.connect(embedded=True, state_dir=Path(tmp) / "coord")
            try:
                session = client.simulate("ffnet", CONFIG, DATA_CONFIG,
                                          dataset=frame(n * rows_per_client),
                                          test=frame(200, seed=1), num_clients=n,
                                          num_rounds=rounds, engine="local", seed=0)
                assert session.wait(1800, raise_on_failure=True)
                info = session.rounds()
            finally:
                client.close()
        row = summarise(info, "client_seconds", n)
        out.append(row)
        print("simulated", json.dumps(row), flush=True)
    return out


def real(counts: list[int], rounds: int, rows_per_client: int) -> list[dict[str, Any]]:
    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation

    out = []
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="many-real-") as tmp:
            work = Path(tmp)
            (work / "data").mkdir()
            frame(200, seed=1).to_parquet(work / "data" / "test.parquet")
            silos = {}
            for i in range(n):
                path = work / "data" / f"train{i}.parquet"
                frame(rows_per_client, seed=10 + i).to_parquet(path)
                silos[f"silo{i}"] = {f"train{i}": path, "test": work / "data" / "test.parquet"}
            started = time.perf_counter()
            with LocalFederation(work / "runners", silos, work / "data") as fed:
                up = time.perf_counter() - started
                client = jupyter_fed.connect(embedded=True, state_dir=work / "coord",
                                             runners=fed.runners)
                try:
                    session = client.create_fl_session(
                        name="many", min_num_clients=n, num_rounds=rounds, package_name="ffnet",
                        model_config=CONFIG, data_config=DATA_CONFIG).start()
                    tb, group = client.task_builder(), SessionTaskGroup(session)
                    for i in range(n):
                        group.add_task(tb.hfl(f"train{i}", "test", runner=f"silo{i}"))
                    t0 = time.perf_counter()
                    running = group.start()
                    while len(session.rounds()) < 2:  # round 1 committed: steady state from here
                        time.sleep(0.005)
                    cpu0, first = cpu_seconds(), len(session.rounds())
                    while len(session.rounds()) < rounds + 1:
                        time.sleep(0.005)
                    cpu1, last = cpu_seconds(), len(session.rounds())
                    running.wait(1800, 0.1)
                    total = time.perf_counter() - t0
                    info = session.rounds()
                finally:
                    client.close()
        row = {**summarise(info, "local_seconds", n), "runners_up_s": round(up, 2),
               "session_s": round(total, 2)}
        row.update({f"cpu_ms_per_round_{k}": round(1000 * (cpu1[k] - cpu0[k]) / (last - first), 1)
                    for k in cpu0})
        out.append(row)
        print("real", json.dumps(row), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("simulated", "real", "both"), default="both")
    parser.add_argument("--clients", default="10,25,50,100")
    parser.add_argument("--real-clients", default="2,4,8,16")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rows", type=int, default=200, help="training rows per client")
    args = parser.parse_args()
    figures: dict[str, Any] = {"rounds": args.rounds, "rows_per_client": args.rows}
    if args.mode in ("simulated", "both"):
        figures["simulated"] = simulated([int(c) for c in args.clients.split(",")], args.rounds,
                                         args.rows)
    if args.mode in ("real", "both"):
        figures["real"] = real([int(c) for c in args.real_clients.split(",")], args.rounds,
                               args.rows)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "many_clients.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
