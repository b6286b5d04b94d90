"""VFL-GLM against the pooled fit on the joined rows: coefficients, test ROC AUC, wall time.

Two real runner processes on loopback (runner start and the ``prl`` linkage excluded) hold
vertically split data, as in ``benchmarks/splitnn.py``:

- ``generated``: ``jupyter_fed.demo.data.write_vertical`` (x0…x7 at party a, x8…x14 and the
  label at party b; ``--overlap`` of each party's people are the other's too);
- ``breast_cancer``: scikit-learn's breast-cancer data, a 70/30 split of the people, the 30
  features split 15/15 by columns, each party missing a different 5% of the people.

Each family of ``--families`` is fitted by a ``vfl_glm`` session (``release_coefficients`` on, so
the coefficients can be compared) and by statsmodels' IRLS on the joined training rows (the
pooled reference; scikit-learn's unpenalised solver where statsmodels refuses separable data).
Targets (issue 16): every coefficient within 1e-3 of the pooled fit, or the same test ROC AUC
within 0.005 where the pooled fit does not exist.

Run: ``python benchmarks/vfl_glm.py [--rows 20000] [--rounds 50] [--families logistic,normal]
[--out vfl_glm.json]``; figures also go to ``benchmarks/results/vfl_glm.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from splitnn import write_breast_cancer, write_generated


def pooled(frame: pd.DataFrame, cols: list[str], family: str) -> tuple[dict[str, float], str,
                                                                          float]:
    """The pooled fit by statsmodels (or scikit-learn if the data separate), and its seconds."""
    import statsmodels.api as sm

    from jupyter_fed.packages.vfl_glm.baseline import fit_pooled

    fam = {"logistic": sm.families.Binomial(), "normal": sm.families.Gaussian(),
           "poisson": sm.families.Poisson()}[family]
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit = sm.GLM(frame["y"].to_numpy(float), sm.add_constant(frame[cols].to_numpy(float)),
                         family=fam).fit(tol=1e-12, maxiter=200)
        params = np.asarray(fit.params)
        out = {"intercept": float(params[0]), **dict(zip(cols, map(float, params[1:]), strict=True))}
        return out, "statsmodels", time.perf_counter() - t0
    except Exception:
        t0 = time.perf_counter()
        return fit_pooled(frame, cols, "y", family), "sklearn (separable)", \
            time.perf_counter() - t0


def run_case(name: str, paths: dict[str, dict[str, Path]], root: Path, args: Any,
             families: list[str]) -> list[dict[str, Any]]:
    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.federation import LocalFederation
    from jupyter_fed.packages import binary_auc
    from jupyter_fed.packages._metrics import r2

    frames = {(p, r): pd.read_parquet(paths[p][r]) for p in "ab" for r in ("train", "test")}
    a_cols = [c for c in frames[("a", "train")].columns if c != "pid"]
    b_cols = [c for c in frames[("b", "train")].columns if c not in ("pid", "y")]
    silos = {f"r{p}": {f"{p}_{r}": {"path": paths[p][r], "id_columns": ["pid"]}
                       for r in ("train", "test")} for p in "ab"}
    joined = {r: frames[("a", r)].merge(frames[("b", r)], on="pid") for r in ("train", "test")}
    rows: list[dict[str, Any]] = []
    with LocalFederation(root / f"{name}-runners", silos, root) as fed:
        client = jupyter_fed.connect(embedded=True, state_dir=root / f"{name}-coord",
                                     runners=fed.runners)
        tb = client.task_builder()
        ids = {"id_columns": ["pid"]}
        prl = client.create_prl_session("link", data_config={"clients": {"a": ids, "b": ids}}
                                        ).start()
        (SessionTaskGroup(prl).add_task(tb.prl("ra/a_train", "a_test", client_name="a"))
         .add_task(tb.prl("rb/b_train", "b_test", client_name="b")).start().wait(600))
        for family in families:
            act = {"logistic": "sigmoid", "normal": "identity", "poisson": "exp"}[family]
            model = {"strategy": {"name": "VflGlm"}, "ml_task": {"type": family},
                     "model": {"a": {"params": {"input_size": len(a_cols),
                                                "output_activation": act}},
                               "b": {"params": {"input_size": len(b_cols),
                                                "output_activation": act}}},
                     "seed": 23, "release_coefficients": True}
            data = {"a": {"label_client": False, "predictors": a_cols, "target": None},
                    "b": {"label_client": True, "predictors": b_cols, "target": "y"}}
            t0 = time.perf_counter()
            session = client.create_vfl_session(name, prl_session_id=prl.id, vfl_mode="train",
                                                num_rounds=args.rounds, package_name="iai_glm",
                                                data_config=data, model_config=model).start()
            (SessionTaskGroup(session)
             .add_task(tb.vfl_train("ra/a_train", "a_test", 1024, client_name="a"))
             .add_task(tb.vfl_train("rb/b_train", "b_test", 1024, client_name="b"))
             .start().wait(1800))
            wall = time.perf_counter() - t0
            got = session.model().coefficients()
            ref, how, ref_seconds = pooled(joined["train"], a_cols + b_cols, family)
            te = joined["test"]
            eta = ref["intercept"] + sum(te[c].to_numpy() * ref[c] for c in a_cols + b_cols)
            final = session.metrics().as_dict()["federated_metrics"][-1]
            row = {"data": name, "family": family, "linked_train_rows": len(joined["train"]),
                   "linked_test_rows": len(te), "pooled_by": how,
                   "rounds": session.model().meta.get("rounds"),
                   "max_abs_coef_diff": float(f"{max(abs(got[k] - ref[k]) for k in ref):.3g}"),
                   "vfl_seconds": round(wall, 2), "pooled_seconds": round(ref_seconds, 3)}
            if family == "logistic":
                row["vfl_roc_auc"] = round(final["roc_auc"], 4)
                row["pooled_roc_auc"] = round(binary_auc(te["y"].to_numpy(), eta), 4)
            else:
                mu = eta if family == "normal" else np.exp(eta)
                row["vfl_r2"] = round(final["r2"], 4)
                row["pooled_r2"] = round(r2(te["y"].to_numpy(float), mu), 4)
            print(json.dumps(row))
            rows.append(row)
        client.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--overlap", type=float, default=0.9)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--families", default="logistic,normal,poisson")
    p.add_argument("--skip-breast-cancer", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = run_case("generated", write_generated(root, args.rows, args.overlap), root, args,
                        args.families.split(","))
        if not args.skip_breast_cancer:
            rows += run_case("breast_cancer", write_breast_cancer(root), root, args,
                             ["logistic"])
    out = args.out or Path(__file__).parent / "results" / "vfl_glm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
