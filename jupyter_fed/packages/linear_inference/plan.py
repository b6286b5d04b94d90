"""Coordinator half of linear_inference: merge the silos' sums and solve every model at once.

``LinearRegInference`` is one round: the OLS sufficient statistics of every silo add up to the
pooled ones, and each model's coefficients, standard errors and residual variance follow exactly.
``LogitRegInference`` is Newton's method on the pooled log-likelihood (the same iterations as
statsmodels' ``Logit.fit``): each round sends every model's coefficients, the silos return score
and Fisher information sums, and the coordinator takes all the Newton steps in one batched solve.
It stops when every coefficient of every model moved by less than ``tol`` (statsmodels' rule), or
after ``num_rounds`` iterations (a maximum, with a warning), and a last pass evaluates the
information at the final coefficients, so standard errors are those of the pooled fit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._hfl import weighted_metrics
from jupyter_fed.packages._io import Answer, Artefact, Payload, RoundMetrics, SessionIO, StepResults
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._schema import Problem, check_columns
from jupyter_fed.packages.linear_inference import _bundle
from jupyter_fed.packages.linear_inference.config import parse

__all__ = ["InferencePlan"]


class InferencePlan(Plan):
    """One OLS round, or Newton iterations for every logit model of the bundle together."""

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 10) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.cfg, self.data = parse(self.model_config, self.data_config)
        self.m, self.k = len(self.data.chunked_predictors), len(self.data.shared_predictors)
        self.p = self.k + 2
        self.columns: dict[str, Any] = {}

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        problems: list[Problem] = []
        for info in datasets.values():
            where = f"{runner}/{info['name']}"
            for field in ("target", "shared_predictors", "chunked_predictors"):
                value = getattr(self.data, field)
                problems += check_columns(f"data_config.{field}",
                                          value if isinstance(value, list) else [value], info,
                                          where, index_base=0)
            problems += self._target_kind(info, where)
        return problems

    def _target_kind(self, info: Mapping[str, Any], where: str) -> list[Problem]:
        """``LogitRegInference`` needs a 0/1 target, by the catalog's column kind (if recorded)."""
        name = self.data.target
        cols = list(info.get("columns") or [])
        if isinstance(name, int):
            name = cols[name]["name"] if 0 <= name < len(cols) else None
        col = next((c for c in cols if c["name"] == name), None)
        if not self.cfg.logistic or col is None or col.get("kind") is None:
            return []
        if col["kind"] == "numeric" or (col.get("classes") or 0) > 2:
            return [Problem("data_config.target", f"data_config.target {name!r} of {where} is not "
                            "a 0/1 label; LogitRegInference needs one (use LinearRegInference for "
                            "a numeric target)")]
        return []

    def step_params(self, final: bool = False) -> dict[str, Any]:
        return {"model_config": self.model_config, "data_config": self.data_config,
                "final": final}

    def _expect(self) -> dict[str, np.ndarray]:
        m, q = self.m, self.k + 1
        if self.cfg.logistic:
            shapes = {"hzz": (m, q, q), "hzc": (m, q), "hcc": (m,), "gz": (m, q), "gc": (m,),
                      "loglik": (m,), "correct": (m,)}
        else:
            shapes = {"zz": (q, q), "zy": (q,), "yy": (1,), "zc": (m, q), "cy": (m,), "cc": (m,)}
        return {k: np.zeros(s) for k, s in shapes.items()}

    # the flow -------------------------------------------------------------------------------
    async def run(self, io: SessionIO) -> None:
        if self.cfg.logistic:
            await self._newton(io)
        else:
            await self._ols(io)

    async def _fit_step(self, io: SessionIO, rnd: int, coef: np.ndarray | None,
                        final: bool = False) -> StepResults:
        tensors = {} if coef is None else {"coef": coef}
        try:
            found = await io.step("fit", Payload(self.step_params(final), tensors), round=rnd,
                                  expect=self._expect())
        except SessionFailed as exc:
            if "only allows differentially private steps" not in exc.message:
                raise
            raise SessionFailed(f"{exc.message} — linear_inference shares exact sums over every "
                                "row, which such a dataset never releases", exc.hint) from None
        for a in found:
            self.columns = self.columns or dict(a.outputs.get("columns") or {})
        return found

    async def _ols(self, io: SessionIO) -> None:
        started = time.perf_counter()
        found = await self._fit_step(io, 1, None)
        total = _bundle.merge(a.tensors for a in found)
        n = sum(a.num_examples for a in found)
        g, rhs = _bundle.assemble(total, logistic=False)
        solved = _bundle.solve(g, rhs)
        coef = solved.x
        rss = total["yy"][0] - np.einsum("mp,mp->m", coef, rhs)
        sigma2 = rss / (n - self.p)
        se = np.sqrt(np.maximum(sigma2[:, None] * np.diagonal(solved.inverse, axis1=1, axis2=2),
                                0.0))
        sst = total["yy"][0] - total["zy"][0] ** 2 / n
        extra = {"sigma2": sigma2, "r2": 1.0 - rss / sst if sst > 0 else np.full(self.m, np.nan)}
        per_client = {a.client_id: self._ols_train_metrics(a, coef) for a in found}
        rnd = 1
        if any(c.datasets.get("test") and c.datasets.get("test") != c.datasets.get("train")
               for c in io.clients):
            rnd = 2
            tested = await io.step("evaluate", Payload(self.step_params(True),
                                                       {"coef": np.nan_to_num(coef)}), round=rnd)
            per_client |= {a.client_id: a.outputs["metrics"] for a in tested
                           if a.outputs.get("metrics")}
        self._singular_warning(io, solved.singular)
        await self._finish(io, rnd, coef, se, n, solved.singular, per_client, extra,
                           {"iterations": 1, "converged": True,
                            "duration": time.perf_counter() - started})

    def _ols_train_metrics(self, a: Answer, coef: np.ndarray) -> dict[str, Any]:
        """One client's MSE and R² of the pooled fit on its own rows, from its statistics alone."""
        g, rhs = _bundle.assemble(a.tensors, logistic=False)
        n, yy, sy = a.num_examples, a.tensors["yy"][0], a.tensors["zy"][0]
        with np.errstate(invalid="ignore"):
            rss = yy - 2 * np.einsum("mp,mp->m", coef, rhs) + np.einsum("mp,mpq,mq->m", coef, g, coef)
        sst = yy - sy * sy / n
        r2 = float(np.nanmean(1.0 - rss / sst)) if sst > 0 else float("nan")
        return {"test_loss": float(np.nanmean(rss / n)), "test_r2": r2, "test_num_examples": n}

    async def _newton(self, io: SessionIO) -> None:
        started = time.perf_counter()
        coef = np.zeros((self.m, self.p))
        start, converged, history = 1, False, []
        if io.checkpoint is not None:
            coef = io.checkpoint.arrays["coef"]
            meta = io.checkpoint.meta
            start, converged = io.checkpoint.round + 1, bool(meta.get("converged"))
            history, self.columns = list(meta.get("history", [])), dict(meta.get("columns", {}))
            io.log("info", f"resuming after Newton iteration {io.checkpoint.round}")
        rnd = start - 1
        while not converged and rnd < self.num_rounds:
            rnd += 1
            found = await self._fit_step(io, rnd, coef)
            solved = _bundle.solve(*_bundle.assemble(_bundle.merge(a.tensors for a in found),
                                                     logistic=True))
            step = np.nan_to_num(solved.x)  # a singular model keeps its coefficients
            coef = coef + step
            moved = float(np.abs(step).max()) if step.size else 0.0
            converged = moved < self.cfg.tol
            per_client = {a.client_id: self._logit_metrics(a) for a in found}
            federated = weighted_metrics(per_client)
            history.append(federated)
            await io.commit(rnd, state={"coef": coef},
                            meta={"converged": converged, "history": history,
                                  "columns": self.columns},
                            metrics=RoundMetrics(rnd - 1, federated, per_client),
                            info={"clients": list(per_client), "dropped": found.dropped,
                                  "max_step": moved, "local_seconds": found.slowest})
            io.log("info", f"Newton iteration {rnd}: model {rnd - 1} loss "
                   f"{federated.get('loss', float('nan')):.6g}, largest step {moved:.3g}")
        if not converged:
            io.warn("not_converged", f"Newton's method did not converge in {self.num_rounds} "
                    f"iteration(s) (a coefficient still moved by more than {self.cfg.tol:g}); "
                    "raise num_rounds, or look for separated classes or collinear predictors")
        final = rnd + 1
        found = await self._fit_step(io, final, coef, final=True)
        total = _bundle.merge(a.tensors for a in found)
        solved = _bundle.solve(*_bundle.assemble(total, logistic=True))
        se = np.sqrt(np.maximum(np.diagonal(solved.inverse, axis1=1, axis2=2), 0.0))
        per_client = {a.client_id: self._logit_metrics(a) for a in found}
        self._singular_warning(io, solved.singular)
        await self._finish(io, final, coef, se, sum(a.num_examples for a in found),
                           solved.singular, per_client, {"loglik": total["loglik"]},
                           {"iterations": rnd, "converged": converged,
                            "duration": time.perf_counter() - started})

    def _logit_metrics(self, a: Answer) -> dict[str, Any]:
        """The client's test metrics, or (no test set) its training rows' loss and accuracy."""
        if a.outputs.get("metrics"):
            return dict(a.outputs["metrics"])
        n = a.num_examples
        return {"test_loss": float(np.mean(-a.tensors["loglik"] / n)),
                "test_accuracy": float(np.mean(a.tensors["correct"] / n)), "test_num_examples": n}

    def _singular_warning(self, io: SessionIO, singular: np.ndarray) -> None:
        if singular.any():
            names = self.columns.get("chunked") or [str(c) for c in self.data.chunked_predictors]
            bad = [names[j] for j in np.flatnonzero(singular)]
            shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
            io.warn("singular", f"{len(bad)} model(s) could not be fitted (collinear or constant "
                    f"predictors): {shown}; their coefficients are NaN")

    async def _finish(self, io: SessionIO, rnd: int, coef: np.ndarray, se: np.ndarray, n: int,
                      singular: np.ndarray, per_client: dict[str, dict[str, Any]],
                      extra: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        federated = weighted_metrics(per_client)
        tensors = {"coef": coef, "std_err": np.where(singular[:, None], np.nan, se), **extra}
        meta = {**self.artefact_meta(), "columns": self.columns, "n": n,
                "df_resid": n - self.p, "logistic": self.cfg.logistic,
                "singular": np.flatnonzero(singular).tolist(), **info}
        await io.commit(rnd, metrics=RoundMetrics(rnd - 1 if self.cfg.logistic else 1,
                                                  federated, per_client),
                        artefact=Artefact(tensors, meta),
                        info={**info, "clients": list(per_client)}, done=True)
        io.log("info", f"fitted {self.m} model(s) on {n} rows "
               f"({info['iterations']} iteration(s))")
