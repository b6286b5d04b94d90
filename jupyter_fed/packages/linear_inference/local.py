"""Runner half of linear_inference: sums over this silo's rows for every model of the bundle.

``fit`` streams the training rows once and returns, for every chunked predictor's model, the OLS
sufficient statistics (``LinearRegInference``) or the logit's score, Fisher information and
log-likelihood at the coefficients received (``LogitRegInference``, one Newton iteration). These
are exact aggregates of the whole registered dataset — the runner's minimum-rows policy applies,
and a dataset whose policy requires differential privacy refuses them. With a separate test
dataset, ``fit`` (logit) and ``evaluate`` (OLS, after the one fit) also report test metrics
averaged over the bundle. No row and no cell value leaves, nor appears in an error.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages._metrics import binary_auc
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.linear_inference import _bundle
from jupyter_fed.packages.linear_inference.config import InferenceConfig, InferenceData, parse, resolve

__all__ = ["evaluate", "fit"]

CELLS_PER_BLOCK = 500_000
"""Rows × models per block: the ``(rows, models)`` intermediates stay ~4 MB each, cache-sized."""

READ_ROWS = 2_048
"""Rows per block read from the file: larger blocks pay less per-batch decoding, smaller ones
assemble their row-major float64 copy in cache (2,048 was fastest for 1,000 models)."""

AUC_CELLS = 20_000_000
"""Test rows × models up to which the final pass also computes each model's ROC AUC."""


def _names(handle: DatasetHandle, data: InferenceData) -> tuple[str, list[str], list[str]]:
    names = [c.name for c in handle.info.columns]
    where = f"dataset {handle.info.name!r}"
    target = resolve([data.target], names, "data_config.target", where)[0]
    shared = resolve(data.shared_predictors, names, "data_config.shared_predictors", where)
    chunked = resolve(data.chunked_predictors, names, "data_config.chunked_predictors", where)
    ids = [c.name for c in handle.info.columns if c.role == "id"]
    bad = [c for c in [target, *shared, *chunked] if c in ids]
    if bad:
        raise ConfigError(f"{', '.join(bad)} of dataset {handle.info.name!r} are id columns; they "
                          "identify rows and are never used as numbers", "leave them out")
    return target, shared, chunked


def _rows_per_block(m: int) -> int:
    return int(min(65_536, max(256, CELLS_PER_BLOCK // max(m, 1))))


def _split(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = block[:, 0]
    z = np.empty((len(block), k + 1))
    z[:, 0] = 1.0
    z[:, 1:] = block[:, 1:k + 1]
    return y, z, block[:, k + 1:]


def _check_labels(y: np.ndarray, dataset: str, target: str) -> None:
    if np.any((y != 0.0) & (y != 1.0)):
        raise ConfigError(f"target {target!r} of dataset {dataset!r} must hold 0/1 labels for "
                          "LogitRegInference", "use LinearRegInference for a numeric target")


def _partials(block: np.ndarray, first: int, *, k: int, logistic: bool, coef: np.ndarray | None,
              dataset: str, target: str) -> dict[str, np.ndarray]:
    """One block's partial sums (module-level, so a Dask backend can ship it to its workers).

    The file is read in large blocks (per-batch decoding costs grow with the number of columns)
    and the maths runs on cache-sized slices of them.
    """
    y, z, c = _split(block, k)
    if not logistic:
        return {**_bundle.linear_partials(y, z, c), "n": np.array(float(len(y)))}
    _check_labels(y, dataset, target)
    assert coef is not None
    step = _rows_per_block(c.shape[1])
    parts = (_bundle.logit_partials(y[i:i + step], z[i:i + step], c[i:i + step], coef)
             for i in range(0, len(y), step))
    return {**_bundle.merge(parts), "n": np.array(float(len(y)))}


def _coef(tensors: dict[str, np.ndarray], m: int, k: int) -> np.ndarray:
    coef = tensors.get("coef")
    if coef is None or coef.shape != (m, k + 2) or not np.isfinite(coef).all():
        raise ConfigError(f"step input 'coef' must be a finite ({m}, {k + 2}) array",
                          "the coordinator sends the current coefficients of every model")
    return np.asarray(coef, dtype=np.float64)


def _pass(ctx: StepContext, handle: DatasetHandle, cfg: InferenceConfig, data: InferenceData,
          coef: np.ndarray | None) -> tuple[dict[str, np.ndarray], tuple[str, list[str], list[str]]]:
    target, shared, chunked = _names(handle, data)
    fn = functools.partial(_partials, k=len(shared), logistic=cfg.logistic, coef=coef,
                           dataset=handle.info.name, target=target)
    total: dict[str, np.ndarray] = {}
    rows, expected = 0, max(handle.num_rows, 1)
    for part in handle.map_blocks([target, *shared, *chunked], fn, READ_ROWS):
        total = _bundle.merge([total, part])
        rows += int(part["n"])
        ctx.progress(min(rows / expected, 1.0), "one pass over the rows for every model")
    if not total:
        raise ConfigError(f"dataset {handle.info.name!r} has no rows", "")
    return total, (target, shared, chunked)


def _test_handle(ctx: StepContext, datasets: dict[str, DatasetHandle]) -> DatasetHandle | None:
    """The test rows to score the bundle on — when there are any and the runner granted this
    step an exact evaluation of them (it allows one per training round)."""
    from jupyter_fed.privacy.evaluation import exact_evaluation

    test, train = datasets.get("test"), datasets["train"]
    if test is None or test.info.name == train.info.name:
        return None
    return test if exact_evaluation(ctx.policy.get("test")) else None


def privacy_cost(step: str, params: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """Exact sums cost no epsilon; ``fit`` is a training round, ``fit``/``evaluate`` score on
    ``test`` (never on the training rows)."""
    from jupyter_fed.packages._costs import exact_costs

    return exact_costs(step, facts, training=("fit",), measuring=("fit", "evaluate"),
                       measures_train=False)


def _test_metrics(handle: DatasetHandle, cfg: InferenceConfig, data: InferenceData,
                  coef: np.ndarray, final: bool) -> dict[str, Any]:
    """Bundle-averaged metrics on the test rows: log loss and accuracy (and, at the end, ROC AUC)
    for the logit; MSE and R² for OLS."""
    target, shared, chunked = _names(handle, data)
    k, m = len(shared), len(chunked)
    auc = final and cfg.logistic and handle.num_rows * m <= AUC_CELLS
    n, loss, hits, sy, syy = 0, np.zeros(m), np.zeros(m), 0.0, 0.0
    ys, etas = [], []
    for block in handle.iter_batches([target, *shared, *chunked], _rows_per_block(m)):
        y, z, c = _split(block, k)
        eta = _bundle.linear_predictor(z, c, coef)
        n += len(y)
        if cfg.logistic:
            _check_labels(y, handle.info.name, target)
            loss += np.logaddexp(0.0, eta).sum(axis=0) - y @ eta
            hits += ((eta > 0) == (y[:, None] > 0.5)).sum(axis=0)
            if auc:
                ys.append(y)
                etas.append(eta)
        else:
            loss += ((y[:, None] - eta) ** 2).sum(axis=0)
            sy, syy = sy + float(y.sum()), syy + float(y @ y)
    if n == 0:
        return {}
    out: dict[str, Any] = {"test_loss": float(np.mean(loss / n)), "test_num_examples": n}
    if cfg.logistic:
        out["test_accuracy"] = float(np.mean(hits / n))
        if auc:
            labels, scores = np.concatenate(ys), np.concatenate(etas)
            out["test_roc_auc"] = float(np.nanmean([binary_auc(labels, scores[:, j])
                                                    for j in range(m)]))
    else:
        sst = syy - sy * sy / n
        out["test_r2"] = float(np.mean(1.0 - loss / sst)) if sst > 0 else float("nan")
    return out


def _check_dominance(ctx: StepContext, dataset: str, width: int, spread: np.ndarray) -> None:
    """Refuse the logit sums when some model's rests on a few rows (glm's rule, attack #9): the
    coefficients are the caller's, and a steep model puts the information weight of all but one
    row below any precision — its information matrix is then that row's outer product."""
    from jupyter_fed.privacy.suppression import dominated

    policy = ctx.policy.get("train") or {}
    weights, minimum = dominated(policy, width, spread[0], spread[1])
    scores, _ = dominated(policy, width, spread[2], spread[3])
    few = int(np.count_nonzero(weights | scores))
    if few:
        raise PermissionDenied(
            f"the Newton step's sums on dataset {dataset!r} would be dominated by a few rows for "
            f"{few} of the {len(weights)} model(s): their weights are worth fewer than {minimum} rows",
            "an honest fit gets here when a predictor separates the classes: drop it from "
            "chunked_predictors")


def fit(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
        tensors: dict[str, np.ndarray]) -> StepResult:
    """One pass over ``train``: OLS statistics, or one Newton iteration's sums at ``coef``."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    handle = datasets["train"]
    m, k = len(data.chunked_predictors), len(data.shared_predictors)
    coef = _coef(tensors, m, k) if cfg.logistic else None
    total, (target, shared, chunked) = _pass(ctx, handle, cfg, data, coef)
    n = int(total.pop("n"))
    if cfg.logistic:
        _check_dominance(ctx, handle.info.name, k + 2, total.pop(_bundle.SPREAD))
    outputs: dict[str, Any] = {"columns": {"target": target, "shared": shared, "chunked": chunked}}
    test = _test_handle(ctx, datasets)
    if cfg.logistic and test is not None:
        assert coef is not None
        outputs["metrics"] = _test_metrics(test, cfg, data, coef, bool(params.get("final")))
    return StepResult(tensors=total, outputs=outputs, num_examples=n)


def evaluate(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> StepResult:
    """Test metrics of the fitted bundle (OLS sessions whose clients brought a test set)."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    test = _test_handle(ctx, datasets)
    if test is None:
        return StepResult(outputs={"metrics": {}})
    coef = _coef(tensors, len(data.chunked_predictors), len(data.shared_predictors))
    metrics = _test_metrics(test, cfg, data, coef, final=True)
    return StepResult(outputs={"metrics": metrics},
                      num_examples=int(metrics.get("test_num_examples", 0)))
