"""Private record linkage at scale: keyed hashing of a million ids per party, and PSI vs direct.

Measures, with two real runner processes on loopback (runner start excluded):

- ``keyed_hash``: two parties of ``--rows`` ids each (``--overlap`` of them shared; ids such as
  ``ID-000123456``, normalised with trim + casefold), their train sets linked; the session's wall
  time from ``start()`` to completed, and the seconds each party spent inside its steps. Target:
  under 10 s per party for 1,000,000 ids. Once with the datasets read by pyarrow in the runner,
  once with the same files registered with ``backend: dask``.
- ``psi``: two parties of ``--psi-client-rows`` and ``--psi-server-rows`` ids; the session's wall
  time, against openmined-psi called directly in one process on the same ids (server set-up,
  client request, server response, client intersection: what a program linking two sets with
  the library would run). Target: not slower than the direct calls.

Run: ``python benchmarks/prl.py [--rows 1000000] [--psi-client-rows 100000]
[--psi-server-rows 100000] [--skip-psi] [--skip-dask] [--out prl.json]``. Figures also go to
``benchmarks/results/prl.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def write_ids(folder: Path, rows: int, overlap: float, seed: int,
              rows_b: int | None = None) -> tuple[Path, Path]:
    """Two parquet files of ``rows`` and ``rows_b`` (default: ``rows``) ids, shuffled, sharing
    ``overlap`` of the smaller one's ids; party b writes them in lower case with spaces."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows_b = rows if rows_b is None else rows_b
    rng = np.random.default_rng(seed)
    common = round(overlap * min(rows, rows_b))
    pool = rng.permutation(rows + rows_b - common) + 10_000_000
    a = pool[:rows]
    b = np.r_[pool[:common], pool[rows:]]
    paths = []
    for name, ids, style in (("a", a, "ID-{:09d}"), ("b", b, " id-{:09d} ")):
        ids = rng.permutation(ids)
        path = folder / f"{name}_{len(ids)}_{seed}.parquet"
        pq.write_table(pa.table({"pid": [style.format(int(i)) for i in ids],
                                 "x": rng.normal(size=len(ids))}), path)
        paths.append(path)
    return paths[0], paths[1]


def link(client: Any, datasets: dict[str, str], protocol: str = "keyed_hash") -> dict[str, Any]:
    from jupyter_fed import SessionTaskGroup

    data = {"clients": {c: {"id_columns": ["pid"], "normalise": ["trim", "casefold"]}
                        for c in datasets}, "protocol": protocol}
    started = time.perf_counter()
    session = client.create_prl_session("bench", data_config=data).start()
    group = SessionTaskGroup(session)
    for c, ds in datasets.items():
        group.add_task(client.task_builder().prl(ds, client_name=c))
    group.start().wait(3600)
    wall = time.perf_counter() - started
    info = session.rounds()[-1]["info"]
    per = session.metrics().as_dict()["client_metrics"]
    return {"wall_seconds": round(wall, 2),
            "party_step_seconds": {c: round(sum(v.values()), 2)
                                   for c, v in info["step_seconds"].items()},
            "steps": info["step_seconds"],
            "linked": {c: m["train"]["n_overlapped_records"] for c, m in per.items()}}


def psi_direct(client_ids: list[bytes], server_ids: list[bytes]) -> tuple[float, int]:
    """openmined-psi in one process, one thread: the baseline the psi protocol is held to."""
    import private_set_intersection.python as psi

    started = time.perf_counter()
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(0.0, len(client_ids), server_ids, psi.DataStructure.RAW)
    query = psi.client.CreateWithNewKey(True)
    request = query.CreateRequest(client_ids)
    response = server.ProcessRequest(request)
    found = query.GetIntersection(setup, response)
    return time.perf_counter() - started, len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=float, default=0.9)
    parser.add_argument("--psi-client-rows", type=int, default=100_000)
    parser.add_argument("--psi-server-rows", type=int, default=100_000)
    parser.add_argument("--skip-psi", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--out", default="prl.json", help="file name under benchmarks/results/")
    parser.add_argument("--repeat", type=int, default=1, help="psi: alternate the session and "
                        "the direct calls this many times (the machine's load varies; the "
                        "fastest of each is reported)")
    args = parser.parse_args()

    import jupyter_fed
    from jupyter_fed.demo.federation import LocalFederation

    work = Path(tempfile.mkdtemp(prefix="prl-bench-"))
    data = work / "data"
    data.mkdir()
    t = time.perf_counter()
    a, b = write_ids(data, args.rows, args.overlap, 1)
    silos: dict[str, dict[str, Any]] = {
        "ra": {"a": {"path": a, "id_columns": ["pid"]}},
        "rb": {"b": {"path": b, "id_columns": ["pid"]}}}
    if not args.skip_dask:
        silos["ra"]["a_dask"] = {"path": a, "id_columns": ["pid"], "backend": {"name": "dask"}}
        silos["rb"]["b_dask"] = {"path": b, "id_columns": ["pid"], "backend": {"name": "dask"}}
    if not args.skip_psi:
        pc, ps = write_ids(data, args.psi_client_rows, args.overlap, 2, args.psi_server_rows)
        silos["ra"]["a_psi"] = {"path": pc, "id_columns": ["pid"]}
        silos["rb"]["b_psi"] = {"path": ps, "id_columns": ["pid"]}
    print(f"wrote the ids in {time.perf_counter() - t:.1f} s")
    figures: dict[str, Any] = {"rows": args.rows, "overlap": args.overlap}
    with LocalFederation(work / "runners", silos, data) as fed:
        client = jupyter_fed.connect(embedded=True, state_dir=work / "coord", runners=fed.runners)
        link(client, {"a": "ra/a", "b": "rb/b"})  # warm: imports and the runners' file cache
        figures["keyed_hash"] = link(client, {"a": "ra/a", "b": "rb/b"})
        print("keyed_hash", figures["keyed_hash"])
        if not args.skip_dask:
            link(client, {"a": "ra/a_dask", "b": "rb/b_dask"})
            figures["keyed_hash_dask"] = link(client, {"a": "ra/a_dask", "b": "rb/b_dask"})
            print("keyed_hash, dask backend", figures["keyed_hash_dask"])
        if not args.skip_psi:
            import pyarrow.parquet as pq

            norm = lambda p: [s.strip().casefold().encode()  # noqa: E731
                              for s in pq.read_table(p).column("pid").to_pylist()]
            sessions, direct = [], []
            for _ in range(max(1, args.repeat)):  # alternated: both see the same load
                sessions.append(link(client, {"a": "ra/a_psi", "b": "rb/b_psi"}, "psi"))
                print("psi", sessions[-1])
                seconds, size = psi_direct(norm(pc), norm(ps))
                assert size == sessions[-1]["linked"]["a"], (size, sessions[-1]["linked"])
                direct.append(round(seconds, 2))
                print(f"openmined-psi directly: {seconds:.1f} s")
            figures["psi"] = min(sessions, key=lambda r: r["wall_seconds"])
            figures["psi_session_seconds_all"] = [r["wall_seconds"] for r in sessions]
            figures["psi_direct_seconds"] = min(direct)
            figures["psi_direct_seconds_all"] = direct
            figures["psi_sizes"] = {"client": args.psi_client_rows,
                                    "server": args.psi_server_rows}
        client.close()
    out = Path(__file__).parent / "results" / args.out
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
