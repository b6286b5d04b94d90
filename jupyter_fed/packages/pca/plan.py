"""Coordinator half of pca (``FedPCA``): merge the silos' moments, decompose, measure.

Round 1 asks every client for its count, mean and centred cross-products and merges them exactly
(the pooled rows' covariance); the axes follow in one eigendecomposition. Round 2 sends the axes
back so that each client reports how well they reconstruct its test rows (MSE and R²). There is
nothing to iterate: ``num_rounds`` is ignored, as in the reference SDK.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages._hfl import weighted_metrics
from jupyter_fed.packages._io import Artefact, Payload, RoundMetrics, SessionIO
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._schema import Problem, check_columns
from jupyter_fed.packages.pca._decompose import decompose
from jupyter_fed.packages.pca.config import parse
from jupyter_fed.packages.pca.local import merge_moments

__all__ = ["PCAPlan"]


class PCAPlan(Plan):
    """Exact federated PCA in one round of moments, plus one round of reconstruction metrics."""

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 1) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.cfg, self.data = parse(self.model_config, self.data_config)

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        problems: list[Problem] = []
        for info in datasets.values():
            where = f"{runner}/{info['name']}"
            problems += check_columns("data_config.predictors", self.data.predictors, info, where,
                                      index_base=0)
            if not self.data.predictors:
                width = sum(1 for c in info.get("columns") or [] if c.get("role") != "id")
                want = self.cfg.model.params.n_features
                if want is not None and want != width:
                    problems.append(Problem("model_config.model.params.n_features",
                                            f"model_config.model.params.n_features is {want} but "
                                            f"{where} has {width} non-id columns"))
        return problems

    def step_params(self) -> dict[str, Any]:
        return {"model_config": self.model_config, "data_config": self.data_config}

    async def run(self, io: SessionIO) -> None:
        started = time.perf_counter()
        if io.checkpoint is not None and io.checkpoint.round == 1:
            arrays, meta = io.checkpoint.arrays, io.checkpoint.meta
            io.log("info", "resuming: the axes were fitted before the restart")
        else:
            arrays, meta = await self._fit(io)
        found = await io.step("evaluate", Payload(self.step_params(),
                                                  {"components": arrays["components"],
                                                   "mean": arrays["mean"]}), round=2)
        per_client = {a.client_id: a.outputs["metrics"] for a in found if a.outputs.get("metrics")}
        federated = weighted_metrics(per_client)
        await io.commit(2, metrics=RoundMetrics(1, federated, per_client),
                        artefact=Artefact(arrays, {**self.artefact_meta(), **meta, "round": 1}),
                        info={"duration": time.perf_counter() - started,
                              "clients": list(per_client), "dropped": found.dropped}, done=True)
        io.log("info", f"{meta['n_components']} component(s) of {len(meta['columns'])} features "
               f"explain {100 * float(np.sum(arrays['explained_variance_ratio'])):.1f}% of the "
               f"variance; reconstruction R² {federated.get('r2', float('nan')):.4f}")

    async def _fit(self, io: SessionIO) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        try:
            found = await io.step("moments", Payload(self.step_params()), round=1)
        except SessionFailed as exc:
            if "only allows differentially private steps" not in exc.message:
                raise
            raise SessionFailed(f"{exc.message} — pca shares the exact moments of every row, "
                                "which such a dataset never releases", exc.hint) from None
        columns: list[str] | None = None
        parts = []
        for a in found:
            names = list(a.outputs.get("columns") or [])
            mean, m2, count = a.tensors.get("mean"), a.tensors.get("m2"), a.outputs.get("count")
            p = len(names)
            if not (isinstance(count, int) and count > 0 and mean is not None and m2 is not None
                    and mean.shape == (p,) and m2.shape == (p, p) and np.isfinite(mean).all()
                    and np.isfinite(m2).all()):
                raise SessionFailed(f"client {a.client_id} sent malformed moments",
                                    "check the client's runner and dataset")
            if columns is not None and names != columns:
                raise SessionFailed(f"client {a.client_id} has predictors {', '.join(names[:8])}"
                                    f"… where others have {', '.join(columns[:8])}…",
                                    "list data_config.predictors so every silo reads the same")
            columns = names
            parts.append((count, mean, m2))
        assert columns is not None
        n, mean, m2 = merge_moments(parts)
        want = self.cfg.model.params.n_components
        if isinstance(want, int) and want > len(columns):
            raise SessionFailed(f"model_config.model.params.n_components is {want}, more than the "
                                f"{len(columns)} predictors", "ask for fewer components")
        d = decompose(n, m2, want)
        arrays = {"components": d.components, "explained_variance": d.explained_variance,
                  "explained_variance_ratio": d.explained_variance_ratio,
                  "singular_values": d.singular_values, "mean": mean,
                  "eigenvalues": d.eigenvalues, "noise_variance": np.array([d.noise_variance])}
        meta = {"columns": columns, "n_samples": n, "n_components": len(d.components),
                "whiten": self.cfg.model.params.whiten}
        await io.commit(1, state=arrays, meta=meta, artefact=Artefact(arrays, {
            **self.artefact_meta(), **meta}), info={"clients": [a.client_id for a in found],
                                                    "dropped": found.dropped})
        return arrays, meta
