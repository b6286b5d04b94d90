"""Runner half of pca: the silo's exact moments, and reconstruction metrics of the fitted axes.

``moments`` streams the predictors once and returns their count, mean and centred cross-product
matrix — an exact aggregate of the whole registered dataset (the runner's minimum rows apply, and
a dataset that requires differential privacy refuses it). ``evaluate`` projects the test rows (or
the training rows when the client has no test set) on the federated axes and back, and returns the
reconstruction's MSE and R². No row or cell value leaves, nor appears in an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.pca.config import PCAData, parse

__all__ = ["evaluate", "moments"]


def predictors(handle: DatasetHandle, data: PCAData) -> list[str]:
    """The predictor names: those listed (names or 0-based indices), or every non-id column."""
    cols = handle.info.columns
    if not data.predictors:
        return [c.name for c in cols if c.role != "id"]
    names = [c.name for c in cols]
    out = []
    for item in data.predictors:
        if isinstance(item, int):
            if not 0 <= item < len(names):
                raise ConfigError(f"data_config.predictors: column index {item} is out of range "
                                  f"for dataset {handle.info.name!r} ({len(names)} columns)", "")
            item = names[item]
        if item not in names:
            raise ConfigError(f"data_config.predictors: {item!r} is not a column of dataset "
                              f"{handle.info.name!r}", "check the schema with client.datasets()")
        if cols[names.index(item)].role == "id":
            raise ConfigError(f"data_config.predictors: {item!r} is an id column of dataset "
                              f"{handle.info.name!r}", "leave id columns out")
        out.append(item)
    return out


def block_moments(block: np.ndarray, first: int) -> tuple[int, np.ndarray, np.ndarray]:
    """``(n, mean, centred XᵀX)`` of one block (module-level: Dask workers may run it)."""
    mean = block.mean(axis=0)
    centred = block - mean
    return len(block), mean, centred.T @ centred


def merge_moments(parts: list[tuple[int, np.ndarray, np.ndarray]]
                  ) -> tuple[int, np.ndarray, np.ndarray]:
    """Pooled ``(n, mean, M2)``: Chan et al.'s pairwise update, exact and stable."""
    n, mean, m2 = 0, np.zeros(0), np.zeros((0, 0))
    for k, mu, s in parts:
        if k == 0:
            continue
        if n == 0:
            n, mean, m2 = k, np.array(mu, np.float64), np.array(s, np.float64)
            continue
        total = n + k
        delta = np.asarray(mu, np.float64) - mean
        mean = mean + delta * (k / total)
        m2 = m2 + s + np.outer(delta, delta) * (n * k / total)
        n = total
    return n, mean, m2


def _width_check(names: list[str], params: dict[str, Any], dataset: str) -> None:
    cfg, _ = parse(params.get("model_config"), params.get("data_config"))
    want = cfg.model.params.n_features
    if want is not None and want != len(names):
        raise ConfigError(f"model_config.model.params.n_features is {want} but dataset {dataset!r} "
                          f"has {len(names)} predictors", "set n_features, or list the predictors")


def moments(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """Count, mean and centred cross-products of the predictors over every training row."""
    _cfg, data = parse(params.get("model_config"), params.get("data_config"))
    handle = datasets["train"]
    names = predictors(handle, data)
    _width_check(names, params, handle.info.name)
    parts = []
    for part in handle.map_blocks(names, block_moments):
        parts.append(part)
        ctx.progress(min(sum(p[0] for p in parts) / max(handle.num_rows, 1), 1.0), "moments")
    n, mean, m2 = merge_moments(parts)
    if n < 2:
        raise ConfigError(f"dataset {handle.info.name!r} has too few rows for PCA", "")
    return StepResult(tensors={"mean": mean, "m2": m2},
                      outputs={"count": int(n), "columns": names}, num_examples=int(n))


def evaluate(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> StepResult:
    """MSE and R² (mean over features) of projecting rows on the axes and back."""
    _cfg, data = parse(params.get("model_config"), params.get("data_config"))
    from jupyter_fed.privacy.evaluation import exact_evaluation

    test, train = datasets.get("test"), datasets["train"]
    handle = test if test is not None else train
    if not exact_evaluation(ctx.policy.get("test" if test is not None else "train")):
        return StepResult(outputs={"metrics": {}})  # beyond the session's exact evaluations
    names = predictors(handle, data)
    components, mean = tensors.get("components"), tensors.get("mean")
    if components is None or mean is None or components.ndim != 2 or \
            components.shape[1] != len(names) or mean.shape != (len(names),):
        raise ConfigError("step input must be 'components' (k, features) and 'mean' (features)",
                          "the coordinator sends the fitted axes")
    n, sse = 0, np.zeros(len(names))
    parts = []
    for block in handle.iter_batches(names):
        back = (block - mean) @ components.T @ components + mean
        sse += ((block - back) ** 2).sum(axis=0)
        parts.append(block_moments(block, n))
        n += len(block)
    if n == 0:
        return StepResult(outputs={"metrics": {}})
    _, _, m2 = merge_moments(parts)
    sst = np.diagonal(m2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 0, 1.0 - sse / sst, np.where(sse == 0, 1.0, 0.0))
    mse = float(sse.sum() / (n * len(names)))  # the loss is the MSE, as the reference logs it
    metrics = {"test_loss": mse, "test_mse": mse, "test_r2": float(r2.mean()),
               "test_num_examples": n}
    return StepResult(outputs={"metrics": metrics}, num_examples=n)


def privacy_cost(step: str, params: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """Exact moments cost no epsilon; ``moments`` is the session's training round, ``evaluate``
    scores the axes on ``test`` (else ``train``)."""
    from jupyter_fed.packages._costs import exact_costs

    return exact_costs(step, facts, training=("moments",), measuring=("evaluate",),
                       measures_train=True)
