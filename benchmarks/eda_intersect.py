"""EDA intersect mode at scale: pairs of columns across two parties under BFV encryption.

Measures

- ``protocol``: the encrypted exchange alone, in one process (what the ``encrypt``, ``evaluate``
  and ``decrypt`` steps compute): ``--rows`` aligned rows, two numeric paired columns per party
  (``--bins2d`` bins each: 2 × (bins2d + 1) fields per party), seconds per phase and the bytes
  relayed each way;
- ``session``: the same through two real runner processes on loopback: a record linkage of
  ``--rows / overlap`` rows per party first (not timed), then the intersect-mode EDA session from
  ``start()`` to completed, the seconds each party spent in each step, and the error of the
  released correlation against numpy on the joined rows.

Run: ``python benchmarks/eda_intersect.py [--rows 100000] [--bins2d 10] [--skip-session]
[--out eda_intersect.json]``. Figures also go to ``benchmarks/results/eda_intersect.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def protocol(rows: int, bins2d: int) -> dict[str, Any]:
    from jupyter_fed.packages.eda_intersect import _he
    from jupyter_fed.packages.eda_intersect._fields import (
        FieldSpec,
        block_noise,
        fields_of,
        quant_bits,
    )

    rng = np.random.default_rng(0)
    q = quant_bits(rows)
    specs = [FieldSpec(p, f"c{i}", "numeric", -4.0, 4.0, bins2d) for p in "ab" for i in range(2)]
    x = rng.normal(size=(rows, 4))
    fa = np.concatenate([fields_of(x[:, i], specs[i], q) for i in range(2)], axis=1)
    fb = np.concatenate([fields_of(x[:, 2 + i], specs[2 + i], q) for i in range(2)], axis=1)
    noise = np.zeros((fb.shape[1], fa.shape[1]), dtype=np.int64)
    w = specs[0].width
    for i in range(2):
        for j in range(2):
            noise[j * w:(j + 1) * w, i * w:(i + 1) * w] = block_noise(specs[i], specs[2 + j], 0.5, q)
    t0 = time.perf_counter()
    key = _he.new_context()
    chunks = _he.encrypt_fields(key, fa)
    public = _he.public_context(key)
    t1 = time.perf_counter()
    back = _he.evaluate(public, chunks, fa.shape[1], fb, noise)
    t2 = time.perf_counter()
    totals = _he.decrypt_sums(_he.secret_bytes(key), back, fa.shape[1])
    t3 = time.perf_counter()
    assert np.array_equal(totals, fb.T @ fa + noise)
    return {"rows": rows, "fields_per_party": int(fa.shape[1]), "ciphertexts": len(chunks),
            "encrypt_seconds": round(t1 - t0, 2), "evaluate_seconds": round(t2 - t1, 2),
            "decrypt_seconds": round(t3 - t2, 2),
            "bytes_to_evaluator": len(public) + sum(map(len, chunks)),
            "bytes_back": sum(map(len, back))}


def write_parties(folder: Path, rows: int, overlap: float) -> tuple[Path, Path, Any]:
    import pandas as pd

    rng = np.random.default_rng(3)
    per = round(rows / overlap)
    n = rows + 2 * (per - rows)
    u = rng.normal(size=(n, 2))
    v = np.c_[0.6 * u[:, 0] + 0.8 * rng.normal(size=n), rng.normal(size=n)]
    ids = np.array([f"ID{i:09d}" for i in range(n)])
    a_rows = rng.permutation(np.r_[np.arange(rows), rows + np.arange(per - rows)])
    b_rows = rng.permutation(np.r_[np.arange(rows), per + np.arange(per - rows)])
    a = pd.DataFrame({"pid": ids[a_rows], "x0": u[a_rows, 0], "x1": u[a_rows, 1]})
    b = pd.DataFrame({"pid": ids[b_rows], "y0": v[b_rows, 0], "y1": v[b_rows, 1]})
    pa, pb = folder / "a.parquet", folder / "b.parquet"
    a.to_parquet(pa, index=False)
    b.to_parquet(pb, index=False)
    return pa, pb, (u[:rows], v[:rows])


def session(rows: int, bins2d: int, overlap: float) -> dict[str, Any]:
    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation

    work = Path(tempfile.mkdtemp(prefix="eda-intersect-bench-"))
    data = work / "data"
    data.mkdir()
    pa, pb, (u, v) = write_parties(data, rows, overlap)
    bounds = {"ra": {"x0": (-4, 4), "x1": (-4, 4)}, "rb": {"y0": (-4, 4), "y1": (-4, 4)}}
    silos = {"ra": {"a": {"path": pa, "id_columns": ["pid"], "bounds": bounds["ra"]}},
             "rb": {"b": {"path": pb, "id_columns": ["pid"], "bounds": bounds["rb"]}}}
    with LocalFederation(work / "runners", silos, data) as fed:
        client = jupyter_fed.connect(embedded=True, state_dir=work / "coord", runners=fed.runners)
        tb = client.task_builder()
        prl = client.create_prl_session("link", data_config={
            "a": {"id_columns": ["pid"]}, "b": {"id_columns": ["pid"]}}).start()
        (SessionTaskGroup(prl).add_task(tb.prl("ra/a", client_name="a"))
         .add_task(tb.prl("rb/b", client_name="b")).start().wait(1200))
        started = time.perf_counter()
        eda = client.create_eda_session(
            "bench", data_config={"a": [], "b": []}, eda_mode="intersect",
            prl_session_id=prl.id, paired_columns={"a": ["x0", "x1"], "b": ["y0", "y1"]},
            epsilon=2.0, pair_epsilon=6.0, bins2d=bins2d).start()
        (SessionTaskGroup(eda).add_task(tb.eda("ra/a", client_name="a"))
         .add_task(tb.eda("rb/b", client_name="b")).start().wait(3600))
        wall = time.perf_counter() - started
        info = eda.rounds()[-1]["info"]
        r = eda.results()
        corr = r.corr(r["a"]["x0"], r["b"]["y0"])
        truth = float(np.corrcoef(np.clip(u[:, 0], -4, 4), np.clip(v[:, 0], -4, 4))[0, 1])
        client.close()
    return {"aligned_rows": r.n, "pairs": info["pairs"], "wall_seconds": round(wall, 2),
            "steps": info["step_seconds"], "corr": round(corr, 4), "corr_truth": round(truth, 4),
            "corr_error": round(abs(corr - truth), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="aligned rows")
    parser.add_argument("--bins2d", type=int, default=10)
    parser.add_argument("--overlap", type=float, default=0.9)
    parser.add_argument("--skip-session", action="store_true")
    parser.add_argument("--out", default="eda_intersect.json",
                        help="file name under benchmarks/results/")
    args = parser.parse_args()

    figures: dict[str, Any] = {"protocol": protocol(args.rows, args.bins2d)}
    print("protocol", figures["protocol"])
    if not args.skip_session:
        figures["session"] = session(args.rows, args.bins2d, args.overlap)
        print("session", figures["session"])
    out = Path(__file__).parent / "results" / args.out
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
