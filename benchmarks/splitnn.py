"""SplitNN against the same network trained centrally on the joined rows: ROC AUC and wall time.

Two real runner processes on loopback (runner start excluded) hold vertically split data:

- ``generated``: ``jupyter_fed.demo.data.write_vertical`` (features x0…x7 at party a, x8…x14 and
  the label at party b; ``--overlap`` of each party's people are the other's too);
- ``breast_cancer``: sklearn's breast-cancer data, a random 70/30 split of the people, the 30
  features split 15/15 by columns, each party missing a different 5% of the people.

Each is linked by a ``prl`` session, then trained by SplitNN for every ``exchange_batches`` of
``--exchange`` (batches per exchange: 1 is plain split learning, one step per party per batch).
The central baseline (``splitnn.baseline.train_central``) trains the same bottom networks and head,
same seeds, optimiser, batch size, epochs and batch order, on the rows joined on their ids, in this
process (one torch thread, after a warm-up run). Targets: SplitNN's test ROC AUC within 0.02 of the
central one; SplitNN's session wall time (start to completed, linkage excluded) at most 3× the
central training time.

Run: ``python benchmarks/splitnn.py [--rows 20000] [--epochs 5] [--batch-size 128]
[--exchange 1,8,64] [--out splitnn.json]``; figures also go to ``benchmarks/results/splitnn.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def write_breast_cancer(folder: Path, seed: int = 5) -> dict[str, dict[str, Path]]:
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer(as_frame=True).frame
    cols = [c.replace(" ", "_") for c in raw.columns[:-1]]
    raw.columns = [*cols, "y"]
    rng = np.random.default_rng(seed)
    raw.insert(0, "pid", [f"B{i:05d}" for i in range(len(raw))])
    order = rng.permutation(len(raw))
    cut = int(0.7 * len(raw))
    out: dict[str, dict[str, Path]] = {"a": {}, "b": {}}
    for role, rows in (("train", order[:cut]), ("test", order[cut:])):
        part = raw.iloc[rows]
        for party, features, drop in (("a", cols[:15], 0), ("b", [*cols[15:], "y"], 1)):
            keep = rng.permutation(len(part))
            missing = keep[drop::20][: max(1, len(part) // 20)]  # a different 5% at each party
            mine = part.drop(part.index[missing])[["pid", *features]].sample(frac=1.0,
                                                                             random_state=seed)
            path = folder / f"bc_{party}_{role}.parquet"
            mine.to_parquet(path, index=False)
            out[party][role] = path
    return out


def write_generated(folder: Path, rows: int, overlap: float) -> dict[str, dict[str, Path]]:
    from jupyter_fed.demo.data import write_vertical

    paths = write_vertical(folder / "gen", rows=rows, parties=2, overlap=overlap,
                           test_rows=max(1000, rows // 4))
    out: dict[str, dict[str, Path]] = {"a": {}, "b": {}}
    for party, name in (("party0", "a"), ("party1", "b")):
        for role in ("train", "test"):
            frame = pd.read_parquet(paths[party][role]).rename(columns={"patient_id": "pid"})
            path = folder / f"gen_{name}_{role}.parquet"
            frame.to_parquet(path, index=False)
            out[name][role] = path
    return out


def configs(a_cols: list[str], b_cols: list[str], exchange: int, lr: float) -> tuple[dict, dict]:
    model = {"strategy": {"name": "SplitNN"},
             "model": {"feature_models": {
                 "a": {"params": {"input_size": len(a_cols), "hidden_layer_sizes": [32],
                                  "output_size": 8}},
                 "b": {"params": {"input_size": len(b_cols), "hidden_layer_sizes": [32],
                                  "output_size": 8}}},
                 "label_model": {"params": {"hidden_layer_sizes": [16], "output_size": 2}}},
             "ml_task": {"type": "classification"},
             "optimizer": {"name": "Adam", "params": {"learning_rate": lr}},
             "seed": 7, "exchange_batches": exchange}
    data = {"a": {"label_client": False, "predictors": a_cols, "target": None},
            "b": {"label_client": True, "predictors": b_cols, "target": "y"}}
    return model, data


def run_case(name: str, paths: dict[str, dict[str, Path]], root: Path, args: Any
             ) -> list[dict[str, Any]]:
    import torch

    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation
    from jupyter_fed.packages.splitnn.baseline import train_central

    frames = {(p, r): pd.read_parquet(paths[p][r]) for p in "ab" for r in ("train", "test")}
    a_cols = [c for c in frames[("a", "train")].columns if c != "pid"]
    b_cols = [c for c in frames[("b", "train")].columns if c not in ("pid", "y")]
    silos = {f"r{p}": {f"{p}_{r}": {"path": paths[p][r], "id_columns": ["pid"]}
                       for r in ("train", "test")} for p in "ab"}
    joined = {r: frames[("a", r)].merge(frames[("b", r)], on="pid") for r in ("train", "test")}
    lr = args.lr if name == "generated" else args.lr / 2
    rows: list[dict[str, Any]] = []
    torch.set_num_threads(1)
    with LocalFederation(root / f"{name}-runners", silos, root) as fed:
        client = jupyter_fed.connect(embedded=True, state_dir=root / f"{name}-coord",
                                     runners=fed.runners)
        tb = client.task_builder()
        ids = {"id_columns": ["pid"]}
        t0 = time.perf_counter()
        prl = client.create_prl_session("link", data_config={"clients": {"a": ids, "b": ids}}
                                        ).start()
        (SessionTaskGroup(prl).add_task(tb.prl("ra/a_train", "a_test", client_name="a"))
         .add_task(tb.prl("rb/b_train", "b_test", client_name="b")).start().wait(600))
        linkage = time.perf_counter() - t0
        for exchange in args.exchange:
            model, data = configs(a_cols, b_cols, exchange, lr)
            central_in = ({"a": joined["train"][a_cols].to_numpy(),
                           "b": joined["train"][b_cols].to_numpy()}, joined["train"]["y"].to_numpy(),
                          {"a": joined["test"][a_cols].to_numpy(),
                           "b": joined["test"][b_cols].to_numpy()}, joined["test"]["y"].to_numpy())
            train_central(model, data, *central_in, epochs=1, batch_size=args.batch_size)  # warm
            central = train_central(model, data, *central_in, epochs=args.epochs,
                                    batch_size=args.batch_size)
            t0 = time.perf_counter()
            session = client.create_vfl_session(name, prl_session_id=prl.id, vfl_mode="train",
                                                num_rounds=args.epochs, data_config=data,
                                                model_config=model).start()
            (SessionTaskGroup(session)
             .add_task(tb.vfl_train("ra/a_train", "a_test", args.batch_size, client_name="a"))
             .add_task(tb.vfl_train("rb/b_train", "b_test", args.batch_size, client_name="b"))
             .start().wait(1800))
            wall = time.perf_counter() - t0
            final = session.metrics().as_dict()["federated_metrics"][-1]
            row = {"data": name, "linked_train_rows": len(joined["train"]),
                   "linked_test_rows": len(joined["test"]), "exchange_batches": exchange,
                   "epochs": args.epochs, "batch_size": args.batch_size,
                   "splitnn_roc_auc": round(final["roc_auc"], 4),
                   "central_roc_auc": round(central["roc_auc"], 4),
                   "auc_gap": round(central["roc_auc"] - final["roc_auc"], 4),
                   "splitnn_seconds": round(wall, 2), "central_seconds": round(central["seconds"], 2),
                   "time_ratio": round(wall / max(central["seconds"], 1e-9), 2),
                   "linkage_seconds": round(linkage, 2)}
            print(json.dumps(row))
            rows.append(row)
        client.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--overlap", type=float, default=0.9)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--exchange", default="1,8,64")
    p.add_argument("--skip-breast-cancer", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    args.exchange = [int(x) for x in args.exchange.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = run_case("generated", write_generated(root, args.rows, args.overlap), root, args)
        if not args.skip_breast_cancer:
            rows += run_case("breast_cancer", write_breast_cancer(root), root, args)
    out = args.out or Path(__file__).parent / "results" / "splitnn.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
