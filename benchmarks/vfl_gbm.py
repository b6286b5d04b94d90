"""VFL-GBM (SecureBoost) against scikit-learn on the joined rows: ROC AUC, wall time, bytes.

Two real runner processes on loopback (runner start excluded) hold ``write_vertical`` data
(features x0…x7 at party a, x8…x14 and the label at party b — the generator has 15 features);
a ``prl`` session links them, then a vfl_gbm session trains ``--trees`` trees. The baseline is
``HistGradientBoostingClassifier`` with the same hyper-parameters on the rows joined on their ids.
Reported: test ROC AUC of both, session wall time (start to completed, linkage excluded), bytes
of arrays exchanged per tree (every array the coordinator sent or received: ciphertexts, node
arrays, counts, bits), and per-operation Paillier costs measured in this process, from which the
per-tree time at other sizes is extrapolated (``--extrapolate rows,features``).

Run: ``python benchmarks/vfl_gbm.py [--rows 4000] [--trees 5] [--features 15] [--depth 3] [--bins 32]
[--key-bits 2048] [--extrapolate 100000,20] [--out vfl_gbm.json]``; figures also go to
``benchmarks/results/vfl_gbm.json``.
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


def write_generated(folder: Path, rows: int, features: int = 15) -> dict[str, dict[str, Path]]:
    """The generator's 15 features (8 at party a, 7 with the label at b); beyond 15, columns of
    noise are added at the passive party a (``--features 20``: 13 at a, 7 at b)."""
    from jupyter_fed.demo.data import write_vertical

    paths = write_vertical(folder / "gen", rows=rows, parties=2, overlap=0.9,
                           test_rows=max(500, rows // 4))
    rng = np.random.default_rng(5)
    out: dict[str, dict[str, Path]] = {"a": {}, "b": {}}
    for party, name in (("party0", "a"), ("party1", "b")):
        for role in ("train", "test"):
            frame = pd.read_parquet(paths[party][role]).rename(columns={"patient_id": "pid"})
            if name == "a":
                for j in range(15, features):
                    frame[f"x{j}"] = rng.normal(size=len(frame))
            path = folder / f"gen_{name}_{role}.parquet"
            frame.to_parquet(path, index=False)
            out[name][role] = path
    return out


def crypto_costs(bits: int, samples: int = 100) -> dict[str, float]:
    """Seconds per Paillier operation at this key size, in this process (one core)."""
    from jupyter_fed.packages.vfl_gbm import _paillier

    pub, priv = _paillier.keypair(bits)
    rng = np.random.default_rng(0)
    g, h = rng.normal(size=samples), rng.uniform(size=samples)
    t0 = time.perf_counter()
    cts = _paillier.from_bytes(_paillier.encrypt_rows(pub, g, h, priv), pub.n)
    enc = (time.perf_counter() - t0) / samples  # the label party's (CRT) encryption
    t0 = time.perf_counter()
    _paillier.encrypt_rows(pub, g, h)
    rerandomise = (time.perf_counter() - t0) / samples  # a passive party's: public key only
    many = 200
    t0 = time.perf_counter()  # one group of 100 x 200 rows: adds, one re-randomisation
    _paillier.subset_sums(pub.n, cts * many, np.zeros(samples * many, np.int64), 1)
    adds = (time.perf_counter() - t0 - enc) / (samples * many)
    t0 = time.perf_counter()
    _paillier.decrypt_sums(priv, cts)
    dec = (time.perf_counter() - t0) / samples
    return {"encrypt_row": enc, "add": max(adds, 0.0), "rerandomise": rerandomise,
            "decrypt": dec}


def extrapolate(costs: dict[str, float], rows: int, features_passive: int, depth: int,
                bins: int) -> dict[str, float]:
    """Per-tree seconds of the Paillier work at a size, for a full tree of ``depth`` levels with
    the subtraction trick (1, 1, 2, 4, … histogram nodes per level), every bin filled."""
    hist_nodes = 1 + sum(2 ** (d - 1) for d in range(1, depth))
    enc = rows * costs["encrypt_row"]
    adds = depth * rows * features_passive * costs["add"] / 2 + rows * features_passive * \
        costs["add"]  # root: every row; below it: the smaller child, at most half the rows
    groups = hist_nodes * features_passive * bins
    return {"encrypt_s": enc, "sum_s": adds, "rerandomise_s": groups * costs["rerandomise"],
            "decrypt_s": groups * costs["decrypt"],
            "total_s": enc + adds + groups * (costs["rerandomise"] + costs["decrypt"]),
            "ciphertext_upload_mb": rows * (2 * costs["bits"] // 8 + 1) / 1e6}


def run(args: Any, root: Path) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation
    from jupyter_fed.packages import binary_auc

    paths = write_generated(root, args.rows, args.features)
    frames = {(p, r): pd.read_parquet(paths[p][r]) for p in "ab" for r in ("train", "test")}
    a_cols = [c for c in frames[("a", "train")].columns if c != "pid"]
    b_cols = [c for c in frames[("b", "train")].columns if c not in ("pid", "y")]
    joined = {r: frames[("a", r)].merge(frames[("b", r)], on="pid") for r in ("train", "test")}
    params = {"max_depth": args.depth, "learning_rate": 0.3, "max_bins": args.bins,
              "max_iter": args.trees, "min_samples_leaf": 20, "l2_regularization": 0.0}
    cols = a_cols + b_cols
    t0 = time.perf_counter()
    central = HistGradientBoostingClassifier(**params, early_stopping=False).fit(
        joined["train"][cols].to_numpy(), joined["train"]["y"].to_numpy())
    central_s = time.perf_counter() - t0
    central_auc = binary_auc(joined["test"]["y"].to_numpy(),
                             central.predict_proba(joined["test"][cols].to_numpy())[:, 1])
    silos = {f"r{p}": {f"{p}_{r}": {"path": paths[p][r], "id_columns": ["pid"]}
                       for r in ("train", "test")} for p in "ab"}
    with LocalFederation(root / "runners", silos, root) as fed:
        client = jupyter_fed.connect(embedded=True, state_dir=root / "coord", runners=fed.runners)
        tb = client.task_builder()
        ids = {"id_columns": ["pid"]}
        prl = client.create_prl_session("link", data_config={"clients": {"a": ids, "b": ids}}
                                        ).start()
        (SessionTaskGroup(prl).add_task(tb.prl("ra/a_train", "a_test", client_name="a"))
         .add_task(tb.prl("rb/b_train", "b_test", client_name="b")).start().wait(600))
        model = {"strategy": {"name": "VflGbm"}, "model": {"params": params},
                 "ml_task": {"type": "classification"}, "seed": 7, "key_bits": args.key_bits}
        data = {"a": {"label_client": False, "predictors": a_cols, "target": None},
                "b": {"label_client": True, "predictors": b_cols, "target": "y"}}
        t0 = time.perf_counter()
        session = client.create_vfl_session("bench", prl_session_id=prl.id, vfl_mode="train",
                                            num_rounds=args.trees, package_name="iai_gbm",
                                            data_config=data, model_config=model).start()
        (SessionTaskGroup(session)
         .add_task(tb.vfl_train("ra/a_train", "a_test", client_name="a"))
         .add_task(tb.vfl_train("rb/b_train", "b_test", client_name="b"))
         .start().wait(7200))
        wall = time.perf_counter() - t0
        final = session.metrics().as_dict()["federated_metrics"][-1]
        per_tree = session.model().bytes_per_tree
        client.close()
    return {"linked_train_rows": len(joined["train"]), "linked_test_rows": len(joined["test"]),
            "features": {"a": len(a_cols), "b": len(b_cols)}, **params,
            "key_bits": args.key_bits, "vfl_gbm_roc_auc": round(final["roc_auc"], 4),
            "sklearn_roc_auc": round(central_auc, 4),
            "auc_gap": round(central_auc - final["roc_auc"], 4),
            "vfl_gbm_seconds": round(wall, 2), "seconds_per_tree": round(wall / args.trees, 2),
            "sklearn_seconds": round(central_s, 3),
            "bytes_per_tree": per_tree, "mean_mb_per_tree": round(float(np.mean(per_tree)) / 1e6,
                                                                   3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=4000)
    p.add_argument("--trees", type=int, default=5)
    p.add_argument("--features", type=int, default=15, help="15, or more with noise columns "
                   "added at the passive party")
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--bins", type=int, default=32)
    p.add_argument("--key-bits", type=int, default=2048)
    p.add_argument("--extrapolate", default="100000,20")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--costs-only", action="store_true", help="only the Paillier costs and the "
                   "extrapolation (no session)")
    args = p.parse_args()
    row: dict[str, Any] = {"key_bits": args.key_bits}
    if not args.costs_only:
        with tempfile.TemporaryDirectory() as tmp:
            row = run(args, Path(tmp))
        print(json.dumps(row))
    costs = {**crypto_costs(args.key_bits), "bits": args.key_bits}
    rows_x, feats_x = (int(v) for v in args.extrapolate.split(","))
    row["paillier_seconds_per_op"] = {k: round(v, 6) for k, v in costs.items()}
    row["extrapolated_per_tree"] = {
        "rows": rows_x, "passive_features": feats_x // 2, "depth": args.depth, "bins": args.bins,
        **{k: round(v, 1) for k, v in extrapolate(costs, rows_x, feats_x // 2, args.depth,
                                                  args.bins).items()}}
    print(json.dumps(row, indent=2))
    out = args.out or Path(__file__).parent / "results" / "vfl_gbm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
