"""EDA throughput at one runner vs the raw limit, measured in the same run.

Writes a 10-million-row, 15-column float64 parquet file, then measures

- the raw limit: ``pyarrow.parquet.read_table`` + ``numpy.histogram`` (50 bins) of every column;
- the EDA step inside a real runner process (the task's own timing), and the whole session's wall
  time from the kernel (catalog, dispatch, long-poll, merge included).

Target: EDA step ≤ 2× the raw limit. Run: ``python benchmarks/eda_throughput.py [--rows N]``.
Figures also go to ``benchmarks/results/eda_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def write_file(path: Path, rows: int, cols: int = 15) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        table = pa.table({f"x{i}": rng.normal(i, 1 + i / 10, n) for i in range(cols)})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def raw_limit(path: Path) -> float:
    import pyarrow.parquet as pq

    started = time.perf_counter()
    table = pq.read_table(path)
    for name in table.column_names:
        np.histogram(table.column(name).to_numpy(), bins=50)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()

    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation

    work = Path(tempfile.mkdtemp(prefix="eda-bench-"))
    (work / "data").mkdir()
    path = work / "data" / "big.parquet"
    t = time.perf_counter()
    write_file(path, args.rows)
    print(f"wrote {args.rows:,} x 15 in {time.perf_counter() - t:.1f} s "
          f"({path.stat().st_size / 2**30:.2f} GiB)")
    raw_limit(path)  # warm the page cache so both sides read from memory
    with LocalFederation(work / "runners", {"big": {"big": path}}, work / "data") as fed:
        client = jupyter_fed.connect(embedded=True, state_dir=work / "coord", runners=fed.runners)
        timings = []
        for _ in range(2):  # second run: the runner's table cache and imports are warm
            raw = raw_limit(path)
            started = time.perf_counter()
            session = client.create_eda_session("bench", data_config={"big": []}, epsilon=1.0,
                                                bins=50).start()
            SessionTaskGroup(session).add_task(client.task_builder().eda("big")).start().wait(900)
            wall = time.perf_counter() - started
            step = session.rounds()[-1]["info"]["local_seconds"]
            timings.append((raw, step, wall))
        client.close()
    raw, step, wall = timings[-1]
    figures = {"rows": args.rows, "columns": 15, "raw_limit_seconds": round(raw, 3),
               "eda_step_seconds": round(step, 3), "eda_session_wall_seconds": round(wall, 3),
               "ratio_step_vs_raw": round(step / raw, 3),
               "ratio_session_vs_raw": round(wall / raw, 3),
               "first_run": {"raw": round(timings[0][0], 3), "step": round(timings[0][1], 3),
                             "wall": round(timings[0][2], 3)}}
    for k, v in figures.items():
        print(f"{k:<26} {v}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "eda_throughput.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
