"""Training on a large silo: the worker's peak memory and wall time, streamed against in memory.

One runner process per mode, on the same parquet file (``--rows`` × ``--features`` float64 and a
binary target, row groups of ``--row-group`` rows):

- **in memory**: the runner keeps decoded rows in its workers (``array_cache_mb`` and
  ``step_memory_mb`` large enough): a training step reads the dataset once and indexes it;
- **streamed**: ``array_cache_mb: 0``: every step reads the file in row groups through the
  shuffle buffer (``shuffle_buffer_mb``, default 64), as a silo larger than memory is read.

For each package session (ffnet, glm SGD, glm Newton, gbm) it reports the wall time (session
created → model in hand; the runner already warm) and the worker's peak resident memory above
its size before the session (``VmHWM`` reset through ``/proc/<pid>/clear_refs``). The dataset's
decoded size is printed beside them: streamed, the peak stays near the buffer plus one row group
whatever the rows; in memory it grows with them.

Run: ``python benchmarks/big_silo.py [--rows 1000000] [--features 20] [--only ffnet ...]``;
figures also go to ``benchmarks/results/big_silo.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MiB = 2**20


def write(path: Path, rows: int, features: int, row_group: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(features)]
    w = np.linspace(-1.5, 1.5, features)
    schema = pa.schema([*(pa.field(c, pa.float64()) for c in names), pa.field("y", pa.int64())])
    with pq.ParquetWriter(path, schema) as out:
        for start in range(0, rows, 250_000):
            m = min(250_000, rows - start)
            x = rng.normal(size=(m, features))
            y = (rng.random(m) < 1 / (1 + np.exp(-(x @ w) / 2))).astype(np.int64)
            out.write_table(pa.table({**{c: x[:, j] for j, c in enumerate(names)}, "y": y},
                                     schema=schema), row_group_size=row_group)


def workers(runner_pid: int) -> list[int]:
    """The runner's workers: children of its children (the fork server), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(text.rsplit(")", 1)[1].split()[1])
    children = {pid for pid, ppid in parents.items() if ppid == runner_pid}
    return sorted(pid for pid, ppid in parents.items() if ppid in children)


def status(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peaks(pids: list[int]) -> dict[int, int]:
    """Reset each process's peak RSS to its current RSS; returns the current RSS."""
    out = {}
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass
        out[pid] = status(pid, "VmRSS")
    return out


MODELS: dict[str, tuple[str, dict[str, Any], int]] = {
    "ffnet": ("ffnet", {"strategy": {"name": "FedAvg", "params": {}},
                        "model": {"params": {"hidden_layer_sizes": [32], "output_size": 2}},
                        "ml_task": {"type": "classification", "params": {}},
                        "optimizer": {"name": "SGD", "params": {"learning_rate": 0.05,
                                                                "momentum": 0.9}},
                        "batch_size": 512, "local_epochs": 1, "seed": 5}, 2),
    "glm_sgd": ("glm", {"solver": "sgd", "ml_task": {"type": "logistic"}, "batch_size": 512,
                        "optimizer": {"name": "SGD", "params": {"learning_rate": 0.05}},
                        "seed": 5}, 2),
    "glm_newton": ("glm", {"solver": "newton", "ml_task": {"type": "logistic"}}, 6),
    "gbm": ("gbm", {"strategy": {"name": "HistGradientBoosting"},
                    "model": {"params": {"max_depth": 3, "learning_rate": 0.3, "max_iter": 5}}}, 5),
}


def run_mode(mode: str, work: Path, data: Path, features: int, only: list[str],
             buffer_mb: int) -> dict[str, Any]:
    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation

    settings = {"array_cache_mb": 0} if mode == "streamed" else \
        {"array_cache_mb": 16384, "step_memory_mb": 65536}
    warm = data.parent / "warm.parquet"
    if not warm.exists():
        write(warm, 5_000, features, 1_000, seed=2)
    fed = LocalFederation(work / f"runner-{mode}", {"r": {"big": data, "warm": warm}},
                          data.parent, max_workers=1, warm_workers=1,
                          shuffle_buffer_mb=buffer_mb, **settings)
    out: dict[str, Any] = {}
    with fed:
        pid = fed.processes["r"].pid
        assert pid is not None
        client = jupyter_fed.connect(embedded=True, state_dir=work / f"coord-{mode}",
                                     runners=fed.runners)
        names = [f"x{i}" for i in range(features)]
        for key in ["warm", *only]:  # a first session on a small dataset warms the worker up
            package, model_config, rounds = MODELS["ffnet" if key == "warm" else key]
            if package == "ffnet":
                model_config = json.loads(json.dumps(model_config))
                model_config["model"]["params"]["input_size"] = features
            pids = workers(pid)
            before = reset_peaks(pids)
            started = time.perf_counter()
            session = client.create_fl_session(
                name=key, min_num_clients=1, num_rounds=rounds, package_name=package,
                model_config=model_config, data_config={"predictors": names, "target": "y"}
            ).start()
            task = client.task_builder().hfl("warm" if key == "warm" else "big", runner="r")
            assert SessionTaskGroup(session).add_task(task).start().wait(3600, 0.05), \
                session.info()
            seconds = time.perf_counter() - started
            peak = max((status(p, "VmHWM") - before.get(p, 0) for p in workers(pid)), default=0)
            auc = session.metrics().as_dict()["federated_metrics"][-1].get("roc_auc")
            if key == "warm":
                continue
            out[key] = {"seconds": round(seconds, 2), "peak_growth_mib": round(peak / MiB, 1),
                        "roc_auc": None if auc is None else round(auc, 4)}
            print(mode, key, json.dumps(out[key]), flush=True)
        client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--row-group", type=int, default=20_000)
    parser.add_argument("--buffer-mb", type=int, default=64, help="the runner's shuffle_buffer_mb")
    parser.add_argument("--only", choices=list(MODELS), action="append")
    parser.add_argument("--modes", default="in_memory,streamed")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="big-silo-"))
    data = work / "data" / "big.parquet"
    data.parent.mkdir()
    write(data, args.rows, args.features, args.row_group)
    decoded = args.rows * (args.features + 1) * 8
    print(f"dataset: {args.rows:,} rows × {args.features + 1} columns, "
          f"{decoded / MiB:,.0f} MiB as float64, {data.stat().st_size / MiB:,.0f} MiB on disk, "
          f"row groups of {args.row_group:,}", flush=True)
    figures: dict[str, Any] = {"rows": args.rows, "features": args.features,
                               "row_group": args.row_group, "buffer_mb": args.buffer_mb,
                               "decoded_mib": round(decoded / MiB, 1)}
    for mode in args.modes.split(","):
        figures[mode] = run_mode(mode, work, data, args.features, args.only or list(MODELS),
                                 args.buffer_mb)
    print(f"{'session':<12}{'mode':<11}{'seconds':>9}{'peak MiB':>10}{'AUC':>8}")
    for key in args.only or list(MODELS):
        for mode in args.modes.split(","):
            f = figures[mode][key]
            print(f"{key:<12}{mode:<11}{f['seconds']:>9.2f}{f['peak_growth_mib']:>10.1f}"
                  f"{f['roc_auc'] or float('nan'):>8.4f}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "big_silo.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
