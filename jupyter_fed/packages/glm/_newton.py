"""The Newton solver: federated IRLS (Fisher scoring) to the pooled maximum-likelihood estimate.

Round 0 merges the silos' counts and target sums into the null model (intercept ``g(ȳ)``, slopes
0). Round ``r`` sends model ``r-1``; every silo returns its score and Fisher information sums at it,
with the deviance and its test metrics; the coordinator adds them up and takes the Newton step
``β ← β + (I + nλP)⁻¹ (U - nλPβ)`` (``λ`` the L2 penalty, ``P`` leaves the intercept alone) —
statsmodels' IRLS step on the pooled rows. A step that leaves the family's domain or raises the
penalised deviance is halved (as R's ``glm.fit`` does), at the price of one more pass. The session
stops when the penalised deviance changed by less than ``tol`` (statsmodels' rule) and no
coefficient moved by more than ``tol·(1 + |β|)``, and hands back the model just evaluated,
whose information matrix gives the standard errors; ``num_rounds`` is a maximum.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._hfl import weighted_metrics
from jupyter_fed.packages._io import (
    Artefact,
    Payload,
    RoundMetrics,
    SecureSum,
    SessionIO,
    StepResults,
)
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._secure import CLIP, PRECISION, SUMS
from jupyter_fed.packages.glm import _family
from jupyter_fed.packages.glm.config import GLMConfig, GLMData

__all__ = ["NewtonPlan", "explain_dp_refusal"]


def explain_dp_refusal(exc: SessionFailed, advice: str) -> SessionFailed:
    """The engine's failure, with what to do when a runner refused an exact step because its
    dataset's policy requires differential privacy (the runner's own hint is generic)."""
    if "only allows differentially private steps" not in exc.message:
        return exc
    return SessionFailed(f"{exc.message} — {advice}", exc.hint)

MAX_HALVINGS = 30
ROUNDING = 1e-13
"""Relative change of the deviance below which it is rounding noise (very large deviances)."""


class NewtonPlan(Plan):
    """Federated IRLS for one GLM; built by ``GLMPlan`` for ``solver: newton``."""

    def __init__(self, cfg: GLMConfig, data: GLMData, model_config: Mapping[str, Any],
                 data_config: Mapping[str, Any], num_rounds: int, meta: dict[str, Any]) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.cfg, self.data, self.meta = cfg, data, meta
        self.width = len(data.predictors)
        self.n = 0

    def artefact_meta(self) -> dict[str, Any]:
        return {**self.meta, "solver": "newton"}

    def _params(self) -> dict[str, Any]:
        params = {"model_config": self.model_config, "data_config": self.data_config}
        return {**params, SUMS: True} if self.cfg.secure_aggregation else params

    def _secure(self, *names: str) -> SecureSum | None:
        """Under secure aggregation: the sums the plan may see of a step's tensors."""
        return SecureSum(names, clip=CLIP, precision=PRECISION) \
            if self.cfg.secure_aggregation else None

    @staticmethod
    def _sums(found: StepResults) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Gradient, information, deviance and Pearson χ² summed over the clients (by the
        secure sum, or here)."""
        if found.total is not None:
            t = found.total
            return t["gradient"], t["hessian"], float(t["deviance"][0]), float(t["pearson"][0])
        return (sum(a.tensors["gradient"] for a in found), sum(a.tensors["hessian"] for a in found),
                sum(float(a.outputs["deviance"]) for a in found),
                sum(float(a.outputs.get("pearson") or 0.0) for a in found))

    def _objective(self, deviance: float, coef: np.ndarray) -> float:
        """The penalised deviance: ``D(β) + n·λ·‖w‖²`` (twice the minimised objective × n)."""
        return deviance + self.n * self.cfg.l2 * float(coef[1:] @ coef[1:])

    async def run(self, io: SessionIO) -> None:
        started = time.perf_counter()
        prev_obj: float | None = None
        prev_coef: np.ndarray | None = None
        if io.checkpoint is None:
            coef = await self._null_model(io)
            start = 1
        else:
            state, meta = io.checkpoint.arrays, io.checkpoint.meta
            coef, prev_coef = state["coef"], state.get("prev")
            prev_obj, self.n = meta.get("objective"), int(meta["n"])
            start = io.checkpoint.round + 1
            io.log("info", f"resuming after Newton iteration {io.checkpoint.round}")
        for rnd in range(start, self.num_rounds + 2):
            found, coef, obj = await self._evaluate(io, rnd, coef, prev_coef, prev_obj)
            self.n = sum(a.num_examples for a in found)  # the rows of the clients still here
            grad, info, _, _ = self._sums(found)
            per_client = {a.client_id: dict(a.outputs.get("metrics") or {}) for a in found}
            federated = weighted_metrics(per_client)
            converged = self._converged(obj, prev_obj, coef, prev_coef)
            if converged or rnd == self.num_rounds + 1:
                await self._finish(io, rnd, coef, info, found, obj, per_client, federated,
                                   converged, time.perf_counter() - started)
                return
            penalty = np.full(self.width + 1, self.n * self.cfg.l2)
            penalty[0] = 0.0
            try:
                step = np.linalg.solve(info + np.diag(penalty), grad - penalty * coef)
            except np.linalg.LinAlgError:
                raise SessionFailed("the Fisher information is singular: predictors are "
                                    "collinear or constant across the federation",
                                    "drop redundant predictors, or add an L2 penalty (alpha)"
                                    ) from None
            new = coef + step
            await io.commit(rnd, state={"coef": new, "prev": coef},
                            meta={"objective": obj, "n": self.n},
                            metrics=RoundMetrics(rnd - 1, federated, per_client),
                            info={"clients": list(per_client), "dropped": found.dropped,
                                  "deviance": obj, "local_seconds": found.slowest})
            io.log("info", f"Newton iteration {rnd}: model {rnd - 1} penalised deviance "
                   f"{obj:.10g}, loss {federated.get('loss', float('nan')):.6g}")
            prev_obj, prev_coef, coef = obj, coef, new

    def _converged(self, obj: float, prev_obj: float | None, coef: np.ndarray,
                   prev: np.ndarray | None) -> bool:
        """statsmodels' rule (the penalised deviance moved by less than ``tol``) and no
        coefficient moved by more than ``tol·(1 + |β|)``: with a non-canonical link Fisher scoring
        converges linearly, and a flat deviance can hide coefficients still moving at 1e-6."""
        if prev_obj is None or prev is None:
            return False
        flat = abs(obj - prev_obj) <= self.cfg.tol + ROUNDING * abs(obj)
        return flat and bool(np.all(np.abs(coef - prev) <= self.cfg.tol * (1.0 + np.abs(coef))))

    async def _null_model(self, io: SessionIO) -> np.ndarray:
        try:
            found = await io.step("moments", Payload(self._params()), round=0,
                                  secure=self._secure("count", "sum", "sumsq", "y_sum"))
        except SessionFailed as exc:
            raise explain_dp_refusal(exc, "glm's newton solver shares exact sums over every row; "
                                     "on such datasets use solver: sgd with "
                                     "differential_privacy_params") from None
        self.n = sum(int(a.outputs["count"]) for a in found)
        y_sum = float(found.total["y_sum"][0]) if found.total is not None else \
            sum(float(a.tensors["y_sum"][0]) for a in found)
        y_mean = y_sum / self.n
        coef = np.zeros(self.width + 1)
        with np.errstate(all="ignore"):
            start = _family.link(self.cfg.ml_task.link, y_mean)
        if not math.isfinite(start):
            raise SessionFailed(f"the target's mean has no {self.cfg.ml_task.link} link value "
                                f"(all rows of one class?)", "check the target column")
        coef[0] = start
        await io.commit(0, state={"coef": coef}, meta={"objective": None, "n": self.n},
                        info={"initial": True, "clients": [a.client_id for a in found]})
        return coef

    async def _evaluate(self, io: SessionIO, rnd: int, coef: np.ndarray,
                        prev: np.ndarray | None, prev_obj: float | None
                        ) -> tuple[StepResults, np.ndarray, float]:
        """Sums at ``coef``, halving the step from ``prev`` while it leaves the domain or
        raises the penalised deviance."""
        expect = {"gradient": np.zeros(self.width + 1), "hessian": np.zeros((self.width + 1,) * 2)}
        for halving in range(MAX_HALVINGS + 1):
            found = await io.step("newton", Payload(self._params(), {"coef": coef}), round=rnd,
                                  expect=expect, secure=self._secure("gradient", "hessian",
                                                                     "deviance", "pearson"))
            valid = all(a.outputs.get("valid") for a in found)
            obj = self._objective(self._sums(found)[2], coef) if valid else math.inf
            descent = prev_obj is None or obj <= prev_obj + 1e-9 * abs(prev_obj) + self.cfg.tol
            if descent and math.isfinite(obj):
                return found, coef, obj
            if prev is None:
                break
            io.log("info", f"Newton iteration {rnd}: step halved ({halving + 1}) — the full step "
                   f"{'left the family' + chr(39) + 's domain' if not valid else 'raised the deviance'}")
            coef = (coef + prev) / 2.0
        raise SessionFailed(f"Newton iteration {rnd} found no valid step (the {self.cfg.ml_task.type} "
                            f"family with the {self.cfg.ml_task.link} link)",
                            "try another link, or the default log link")

    async def _finish(self, io: SessionIO, rnd: int, coef: np.ndarray, info: np.ndarray,
                      found: StepResults, obj: float, per_client: dict[str, dict[str, Any]],
                      federated: dict[str, float], converged: bool, seconds: float) -> None:
        p = self.width + 1
        dispersion = 1.0
        if self.cfg.ml_task.type not in ("logistic", "poisson"):
            dispersion = self._sums(found)[3] / max(self.n - p, 1)
        std_err = np.full(p, np.nan)
        if self.cfg.l2 == 0:
            try:
                std_err = np.sqrt(np.maximum(dispersion * np.diag(np.linalg.inv(info)), 0.0))
            except np.linalg.LinAlgError:
                pass
        if not converged:
            io.warn("not_converged", f"Newton's method did not converge in {self.num_rounds} "
                    f"iteration(s) (the deviance still moved by more than {self.cfg.tol:g}); "
                    "raise num_rounds")
        meta = {**self.meta, "solver": "newton", "n": self.n, "df_resid": self.n - p,
                "dispersion": dispersion, "deviance": obj, "converged": converged,
                "iterations": rnd - 1}
        await io.commit(rnd, metrics=RoundMetrics(rnd - 1, federated, per_client),
                        artefact=Artefact({"coef": coef, "std_err": std_err},
                                          {**meta, "round": rnd - 1}),
                        info={"clients": list(per_client), "dropped": found.dropped,
                              "final_evaluation": True, "duration": seconds}, done=True)
        io.log("info", f"{'converged' if converged else 'stopped'} after {rnd - 1} Newton "
               f"iteration(s); penalised deviance {obj:.10g}")
