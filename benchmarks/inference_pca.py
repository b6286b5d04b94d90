"""Exact federated analytics against the pooled computation: linear inference, PCA, GLM Newton.

Real runner processes on loopback (runner start-up excluded from every timing). Reports, from
one run:

- linear inference, 1 shared + 1,000 chunked predictors (0/1/2 genotype counts), 2 runners ×
  50,000 rows, ``LogitRegInference`` and ``LinearRegInference``: the largest relative difference
  of coefficients, standard errors and p-values from statsmodels' ``Logit`` / ``OLS`` fitted model
  by model on the pooled rows, and the wall-time ratio federated / pooled (targets: 1e-6; ≤ 3);
- PCA, 50 features, 3 runners × 100,000 rows, 10 components: components (up to sign), explained
  variance and ratio against scikit-learn's ``PCA`` on the pooled rows, and the time ratio;
- GLM Newton on the five families (2 runners × 50,000 rows, 10 predictors) against statsmodels'
  ``GLM``: coefficient and standard-error differences, iterations, times.

The pooled times are the fits on rows already in memory (loading the silos' files into one frame
is reported apart); the federated time runs from creating the session to holding its model, on
warm runners (each session runs twice; the first, ``cold_seconds``, also pays each runner's
one-off start-up: worker threads, importing the step module, pyarrow's first read).

Run: ``python benchmarks/inference_pca.py [--quick] [--only li|pca|glm]``; figures also go to
``benchmarks/results/inference_pca.json``. Needs statsmodels (the ``test`` extra).
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


def rel(a: Any, b: Any, floor: float = 0.0) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor))) if a.size else 0.0


def gwas_silo(n: int, m: int, seed: int, logistic: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    maf = np.random.default_rng(0).uniform(0.05, 0.5, m)
    geno = rng.binomial(2, maf, size=(n, m)).astype(np.int8)
    s0 = rng.normal(size=n)
    eta = -0.4 + 0.5 * s0 + 0.25 * geno[:, 0] - 0.2 * geno[:, 1] + 0.15 * geno[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int8) if logistic else \
        eta + rng.normal(size=n)
    frame = pd.DataFrame(geno, columns=[f"c{j}" for j in range(m)])
    frame.insert(0, "s0", s0)
    frame.insert(0, "y", y)
    return frame


def glm_silo(family: str, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10)) * 0.5
    eta = 0.3 + x @ np.linspace(-0.4, 0.4, 10)
    mu = np.exp(eta)
    y = {"normal": lambda: eta + rng.normal(size=n),
         "logistic": lambda: (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
         "poisson": lambda: rng.poisson(mu).astype(float),
         "gamma": lambda: rng.gamma(2.0, mu / 2.0),
         "inverse_gaussian": lambda: rng.wald(mu, 3.0)}[family]()
    return pd.DataFrame({**{f"x{j}": x[:, j] for j in range(10)}, "y": y})


class Bench:
    """A federation whose datasets are registered as they are written."""

    def __init__(self, work: Path, runners: int) -> None:
        from jupyter_fed.demo.federation import LocalFederation

        self.work, self.data = work, work / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.cold = 0.0
        self.fed = LocalFederation(work / "runners", {f"r{i}": {} for i in range(runners)},
                                   self.data).start()

    def register(self, runner: int, name: str, frame: pd.DataFrame) -> None:
        path = self.data / f"{name}.parquet"
        frame.to_parquet(path, index=False, row_group_size=16_384)
        with self.fed.processes[f"r{runner}"].http(timeout=120) as admin:
            answer = admin.post("/v1/datasets", json={"name": name, "path": str(path)})
            assert answer.status_code == 201, answer.text

    def run(self, package: str, model_config: dict, data_config: dict, names: list[str],
            num_rounds: int = 30) -> tuple[Any, float, Any]:
        """Run the session twice and time the second: the first pays each runner's one-off
        start-up (worker threads, importing the package's step module, pyarrow's first read),
        reported apart as ``cold_seconds``."""
        _, self.cold, (_, first) = self._once(package, model_config, data_config, names, num_rounds)
        first.close()
        return self._once(package, model_config, data_config, names, num_rounds)

    def _once(self, package: str, model_config: dict, data_config: dict, names: list[str],
              num_rounds: int) -> tuple[Any, float, Any]:
        import jupyter_fed
        from jupyter_fed import SessionTaskGroup

        client = jupyter_fed.connect(embedded=True, state_dir=self.work / f"coord-{package}-"
                                     f"{time.monotonic_ns()}", runners=self.fed.runners)
        client.datasets()  # the catalog is warm, as in a notebook session
        started = time.perf_counter()
        session = client.create_fl_session(name=package, min_num_clients=len(names),
                                           num_rounds=num_rounds, package_name=package,
                                           model_config=model_config, data_config=data_config).start()
        group = SessionTaskGroup(session)
        for i, name in enumerate(names):
            group.add_task(client.task_builder().hfl(name, runner=f"r{i}"))
        assert group.start().wait(3600, 0.05)
        model = session.model()
        seconds = time.perf_counter() - started
        return model, seconds, (session, client)

    def stop(self) -> None:
        self.fed.stop()


def linear_inference(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import statsmodels.api as sm

    out: dict[str, Any] = {}
    bench = Bench(work / "li", 2)
    try:
        for strategy in ("LogitRegInference", "LinearRegInference"):
            logistic = strategy == "LogitRegInference"
            frames = [gwas_silo(args.li_rows, args.li_chunked, 10 + i, logistic) for i in range(2)]
            names = [f"gwas_{strategy}_{i}" for i in range(2)]
            for i, f in enumerate(frames):
                bench.register(i, names[i], f)
            chunked = [f"c{j}" for j in range(args.li_chunked)]
            model, fed_s, (_, client) = bench.run(
                "linear_inference", {"strategy": {"name": strategy}},
                {"target": "y", "shared_predictors": ["s0"], "chunked_predictors": chunked}, names)
            t = time.perf_counter()
            pooled = pd.concat(frames, ignore_index=True).astype(np.float64)
            load_s = time.perf_counter() - t
            y, const = pooled["y"].to_numpy(), np.ones(len(pooled))
            t = time.perf_counter()
            refs = []
            for c in chunked:
                x = np.column_stack([const, pooled["s0"].to_numpy(), pooled[c].to_numpy()])
                fit = sm.Logit(y, x).fit(disp=0) if logistic else sm.OLS(y, x).fit()
                refs.append((fit.params, fit.bse, fit.pvalues))
            pooled_s = time.perf_counter() - t
            params, bse, pvalues = (np.array([r[k] for r in refs]) for k in range(3))
            summary = model.as_dataframe()
            mine_p = summary.p_value.to_numpy().reshape(params.shape)
            out[strategy] = {
                "models": len(chunked), "rows": 2 * args.li_rows,
                "iterations": model.meta["iterations"],
                "max_rel_diff_coef": rel(model.coef, params, 1e-12),
                "max_rel_diff_std_err": rel(model.std_err, bse),
                "max_rel_diff_p_value": rel(mine_p, pvalues, 1e-300),
                "federated_seconds": round(fed_s, 3), "cold_seconds": round(bench.cold, 3),
                "pooled_fit_seconds": round(pooled_s, 3), "pooled_load_seconds": round(load_s, 3),
                "time_ratio": round(fed_s / pooled_s, 3)}
            print(strategy, json.dumps(out[strategy]), flush=True)
            client.close()
    finally:
        bench.stop()
    return out


def pca(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from sklearn.decomposition import PCA

    bench = Bench(work / "pca", 3)
    try:
        mixing = np.random.default_rng(0).normal(size=(50, 50)) * np.linspace(4, 0.2, 50)[:, None]
        frames = [pd.DataFrame(np.random.default_rng(20 + i).normal(size=(args.pca_rows, 50))
                               @ mixing + i, columns=[f"f{j}" for j in range(50)]) for i in range(3)]
        names = [f"pca_{i}" for i in range(3)]
        for i, f in enumerate(frames):
            bench.register(i, names[i], f)
        model, fed_s, (session, client) = bench.run(
            "pca", {"model": {"params": {"n_components": 10}}}, {"predictors": []}, names)
        t = time.perf_counter()
        pooled = pd.concat(frames, ignore_index=True).to_numpy()
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        ref = PCA(n_components=10).fit(pooled)
        pooled_s = time.perf_counter() - t
        sign = np.sign(np.sum(model.components_ * ref.components_, axis=1))[:, None]
        rounds = session.rounds()
        out = {"features": 50, "rows": 3 * args.pca_rows, "components": 10,
               "max_abs_diff_components": float(np.abs(model.components_ * sign
                                                       - ref.components_).max()),
               "max_rel_diff_explained_variance": rel(model.explained_variance_,
                                                      ref.explained_variance_),
               "max_rel_diff_ratio": rel(model.explained_variance_ratio_,
                                         ref.explained_variance_ratio_),
               "federated_seconds": round(fed_s, 3), "cold_seconds": round(bench.cold, 3),
               "pooled_fit_seconds": round(pooled_s, 3), "pooled_load_seconds": round(load_s, 3),
               "time_ratio": round(fed_s / pooled_s, 3),
               "time_ratio_incl_pooled_load": round(fed_s / (pooled_s + load_s), 3),
               "fit_round_seconds": round(next((r["info"].get("duration", 0) for r in rounds
                                                if r["round"] == 2), 0.0), 3)}
        print("PCA", json.dumps(out), flush=True)
        client.close()
    finally:
        bench.stop()
    return out


def glm(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import statsmodels.api as sm

    families = {"normal": sm.families.Gaussian(), "logistic": sm.families.Binomial(),
                "poisson": sm.families.Poisson(),
                "gamma": sm.families.Gamma(sm.families.links.Log()),
                "inverse_gaussian": sm.families.InverseGaussian(sm.families.links.Log())}
    out: dict[str, Any] = {}
    bench = Bench(work / "glm", 2)
    try:
        for k, (family, sm_family) in enumerate(families.items()):
            frames = [glm_silo(family, args.glm_rows, 30 + 2 * k + i) for i in range(2)]
            names = [f"glm_{family}_{i}" for i in range(2)]
            for i, f in enumerate(frames):
                bench.register(i, names[i], f)
            predictors = [f"x{j}" for j in range(10)]
            model, fed_s, (_, client) = bench.run(
                "glm", {"ml_task": {"type": family}}, {"predictors": predictors, "target": "y"},
                names)
            pooled = pd.concat(frames, ignore_index=True)
            t = time.perf_counter()
            ref = sm.GLM(pooled.y, sm.add_constant(pooled[predictors]), family=sm_family).fit()
            pooled_s = time.perf_counter() - t
            out[family] = {"rows": 2 * args.glm_rows, "iterations": model.meta["iterations"],
                           "statsmodels_iterations": int(ref.fit_history["iteration"]),
                           "max_rel_diff_coef": rel([model.intercept_, *model.coef_], ref.params),
                           "max_rel_diff_std_err": rel(model.std_err_, ref.bse),
                           "federated_seconds": round(fed_s, 3),
                           "cold_seconds": round(bench.cold, 3),
                           "pooled_fit_seconds": round(pooled_s, 3)}
            print("GLM", family, json.dumps(out[family]), flush=True)
            client.close()
    finally:
        bench.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows and models")
    parser.add_argument("--only", choices=["li", "pca", "glm"], action="append")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    args.li_rows, args.li_chunked = 50_000 // scale, 1_000 // scale
    args.pca_rows, args.glm_rows = 100_000 // scale, 50_000 // scale
    work = Path(tempfile.mkdtemp(prefix="inference-bench-"))
    only = set(args.only or ["li", "pca", "glm"])
    figures: dict[str, Any] = {"quick": args.quick}
    if "li" in only:
        figures["linear_inference"] = linear_inference(args, work)
    if "pca" in only:
        figures["pca"] = pca(args, work)
    if "glm" in only:
        figures["glm_newton"] = glm(args, work)
    out = Path(__file__).parent / "results" / "inference_pca.json"
    out.parent.mkdir(exist_ok=True)
    if args.only and out.exists():  # a partial run updates its parts of the last full one
        figures = {**json.loads(out.read_text()), **figures}
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
