"""Runner half of glm.

``moments`` (before round 1): the count and target sum (the null model's intercept) and each
predictor's mean and centred sum of squares (the SGD solver's standardisation). ``newton``: one
pass at the received coefficients returning the score (``gradient``) and Fisher information
(``hessian``) sums, the deviance and Pearson χ², plus the model's metrics on the test rows.
``fit`` / ``evaluate``: the SGD solver's FedAvg steps (optionally DP-SGD); ``fit``'s training
loss is an evaluation on the training rows, reported only when the runner granted it exactly.
Moments and Newton sums are exact aggregates of the whole registered dataset: the runner's minimum
rows apply, and a dataset that requires differential privacy refuses them (use ``solver: sgd``
with ``differential_privacy_params``). No row or cell value leaves, nor appears in an error.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages._metrics import RowArrays
from jupyter_fed.packages._options import balanced_index, need_in_memory, round_seed
from jupyter_fed.packages._secure import SUMS, as_sums
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.glm import _family
from jupyter_fed.packages.glm._weights import raw_coefficients
from jupyter_fed.packages.glm.config import GLMConfig, GLMData, parse

__all__ = ["evaluate", "fit", "moments", "newton"]


def _check(handle: DatasetHandle, data: GLMData) -> list[str]:
    cols = {c.name: c for c in handle.info.columns}
    missing = [c for c in [*data.predictors, data.target] if c not in cols]
    if missing:
        raise ConfigError(f"dataset {handle.info.name!r} has no column(s) {', '.join(missing)}",
                          "check data_config predictors/target against the catalog schema")
    ids = [c for c in [*data.predictors, data.target] if cols[c].role == "id"]
    if ids:
        raise ConfigError(f"{', '.join(ids)} of dataset {handle.info.name!r} are id columns",
                          "id columns identify rows and are never used as numbers")
    return [data.target, *data.predictors]


def _target_ok(family: str, y: np.ndarray, dataset: str, target: str) -> None:
    problem = _family.check_target(family, y)
    if problem:
        raise ConfigError(f"target {target!r} of dataset {dataset!r} {problem}",
                          "pick the ml_task.type that matches the target")


def _block_newton(block: np.ndarray, first: int, *, family: str, link: str, coef: np.ndarray,
                  dataset: str, target: str, keep: bool) -> dict[str, Any]:
    """One block's score, information, deviance and Pearson χ² (module-level for Dask)."""
    y = block[:, 0]
    _target_ok(family, y, dataset, target)
    x = block[:, 1:]
    eta = coef[0] + x @ coef[1:]
    mu = _family.inverse_link(link, eta)
    out: dict[str, Any] = {"n": len(y), "valid": _family.valid_mean(family, mu)}
    if not out["valid"]:
        return out
    score, w = _family.score_weights(family, link, y, eta, mu)
    xs = np.empty((len(y), x.shape[1] + 1))
    xs[:, 0], xs[:, 1:] = 1.0, x
    with np.errstate(divide="ignore", invalid="ignore"):
        pearson = float(np.sum((y - mu) ** 2 / _family.variance(family, mu)))
    out |= {"gradient": xs.T @ score, "hessian": (xs * w[:, None]).T @ xs,
            "deviance": float(_family.deviance(family, y, mu, eta).sum()), "pearson": pearson,
            "spread": np.array([np.abs(w).sum(), (w * w).sum(), np.abs(score).sum(),
                                (score * score).sum()])}
    if keep:
        out |= {"y": y, "eta": eta, "mu": mu}
    return out


def _eval_handle(datasets: dict[str, DatasetHandle], private: bool) -> DatasetHandle | None:
    """``test``, else ``train`` — never the DP-protected training rows under DP."""
    test, train = datasets.get("test"), datasets["train"]
    if not private:
        return test or train
    return test if test is not None and test.info.name != train.info.name else None


def _granted(ctx: StepContext, datasets: dict[str, DatasetHandle], handle: DatasetHandle) -> bool:
    """Whether the runner allowed an exact evaluation on ``handle``'s rows in this step."""
    from jupyter_fed.privacy.evaluation import exact_evaluation

    role = next((r for r, h in datasets.items() if h is handle), None)
    return exact_evaluation(ctx.policy.get(role) if role else None)


def _metrics(cfg: GLMConfig, data: GLMData, handle: DatasetHandle, coef: np.ndarray,
             allowed: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics of ``coef`` on ``handle``'s rows, and (logistic) how many classes it predicts;
    nothing when the runner granted no exact evaluation here (glm has no noisy metrics)."""
    if not allowed:
        return {}, {}
    cols = _check(handle, data)
    rows = RowArrays(handle.num_rows, y=np.float64, eta=np.float64)
    for block in handle.iter_batches(cols):
        _target_ok(cfg.ml_task.type, block[:, 0], handle.info.name, data.target)
        rows.add(y=block[:, 0], eta=coef[0] + block[:, 1:] @ coef[1:])
    y, eta = rows["y"], rows["eta"]
    with np.errstate(all="ignore"):
        mu = _family.inverse_link(cfg.ml_task.link, eta)
        metrics = _family.metrics(cfg.ml_task.type, y, mu, eta)
    diagnostics = {"predicted_classes": len(np.unique(eta > 0)), "test_rows": len(y)} \
        if cfg.ml_task.type == "logistic" else {}
    return metrics, diagnostics


def moments(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """Count and target sum, and each predictor's mean and centred sum of squares."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    handle = datasets["train"]
    n, y_sum, parts = 0, 0.0, []
    for block in handle.iter_batches(_check(handle, data)):
        _target_ok(cfg.ml_task.type, block[:, 0], handle.info.name, data.target)
        x = block[:, 1:]
        mean = x.mean(axis=0)
        parts.append((len(x), mean, ((x - mean) ** 2).sum(axis=0)))
        n, y_sum = n + len(block), y_sum + float(block[:, 0].sum())
        ctx.progress(min(n / max(handle.num_rows, 1), 1.0), "moments")
    if n == 0:
        raise ConfigError(f"dataset {handle.info.name!r} has no rows", "")
    count, mean, m2 = 0, np.zeros(len(data.predictors)), np.zeros(len(data.predictors))
    for k, mu, s in parts:  # Chan et al.'s pairwise merge of the blocks
        total = count + k
        delta = mu - mean
        mean, m2, count = mean + delta * (k / total), m2 + s + delta ** 2 * (count * k / total), total
    tensors = {"mean": mean, "m2": m2, "y_sum": np.array([y_sum])}
    if params.get(SUMS):  # secure aggregation adds raw sums up (Chan's merge is not a sum)
        tensors = as_sums(n, mean, m2, y_sum=tensors["y_sum"])
    return StepResult(tensors=tensors, outputs={"count": int(n)}, num_examples=int(n))


def newton(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
           tensors: dict[str, np.ndarray]) -> StepResult:
    """Score and Fisher information sums at ``coef`` (one IRLS iteration), and metrics."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    width = len(data.predictors)
    try:
        coef = raw_coefficients(tensors, width)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"step input: {exc}", "the coordinator sends 'coef'") from None
    if not np.isfinite(coef).all():
        raise ConfigError("step input 'coef' is not finite", "")
    handle = datasets["train"]
    evaluated = _eval_handle(datasets, private=False)
    same = evaluated is handle or (evaluated is not None and evaluated.info.name == handle.info.name)
    fn = functools.partial(_block_newton, family=cfg.ml_task.type, link=cfg.ml_task.link,
                           coef=coef, dataset=handle.info.name, target=data.target, keep=same)
    grad, hess = np.zeros(width + 1), np.zeros((width + 1, width + 1))
    n, dev, pearson, valid, spread = 0, 0.0, 0.0, True, np.zeros(4)
    kept = RowArrays(handle.num_rows if same else 0, y=np.float64, eta=np.float64,
                     mu=np.float64)
    for part in handle.map_blocks(_check(handle, data), fn):
        n += part["n"]
        valid = valid and part["valid"]
        if valid:
            grad, hess = grad + part["gradient"], hess + part["hessian"]
            dev, pearson = dev + part["deviance"], pearson + part["pearson"]
            spread += part["spread"]
            if same:
                kept.add(y=part["y"], eta=part["eta"], mu=part["mu"])
        ctx.progress(min(n / max(handle.num_rows, 1), 1.0), "one IRLS pass")
    if valid:
        _check_dominance(ctx, cfg, handle.info.name, width, spread)
    outputs: dict[str, Any] = {"valid": valid, "deviance": dev if valid else None,
                               "pearson": pearson if valid else None}
    if not valid:  # outside the family's domain: the coordinator shortens its step
        grad, hess = np.zeros(width + 1), np.zeros((width + 1, width + 1))
        outputs["metrics"] = {}
    elif same:
        outputs["metrics"] = _family.metrics(cfg.ml_task.type, kept["y"], kept["mu"], kept["eta"])
    else:
        assert evaluated is not None
        outputs["metrics"] = _metrics(cfg, data, evaluated, coef,
                                      _granted(ctx, datasets, evaluated))[0]
    tensors = {"gradient": grad, "hessian": hess}
    if params.get(SUMS):  # secure aggregation: the deviances are summed with the rest
        tensors |= {"deviance": np.array([dev if valid else 0.0]),
                    "pearson": np.array([pearson if valid else 0.0])}
        outputs.update(deviance=None, pearson=None)
    return StepResult(tensors=tensors, outputs=outputs, num_examples=int(n))


def _check_dominance(ctx: StepContext, cfg: GLMConfig, dataset: str, width: int,
                     spread: np.ndarray) -> None:
    """Refuse Newton sums a few rows dominate (a dominance rule, attack #9).

    The coefficients are the caller's: steep ones put nearly all of the information weight, or
    of the score, on one row (the information matrix is then that row's outer product, whose
    first row over its corner is the row). Each per-row factor summed must be worth at least
    the policy's release minimum of rows, ``(Σ|w|)² / Σw²``. The normal family's identity link is
    exempt from the score's rule: its score sum is ``Xᵀy - XᵀXβ``, the dataset's exact moments
    whatever ``β``, and a legitimate outlier's residual must not fail the fit.
    """
    from jupyter_fed.privacy.suppression import dominated

    linear = cfg.ml_task.type == "normal" and cfg.ml_task.link == "identity"
    for total, squares, what in ((spread[0], spread[1], "information weights"),
                                 (spread[2], spread[3], "score")):
        if what == "score" and linear:
            continue
        few, minimum = dominated(ctx.policy.get("train") or {}, width, total, squares)
        if few:
            raise PermissionDenied(
                f"the Newton step's sums on dataset {dataset!r} at these coefficients would be "
                f"dominated by a few rows: their {what} are worth fewer than {minimum} rows",
                "an honest fit gets here when its classes (nearly) separate or its "
                "coefficients run away: add an L2 penalty (ml_task.params.alpha), or drop the "
                "predictor that separates them; when a few rows' values dwarf the rest, "
                "transform the heavy-tailed column (the policy's min_count decides how many rows "
                "a sum must be worth)")


def fit(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
        tensors: dict[str, np.ndarray]) -> StepResult:
    """SGD solver: evaluate the received model, then train it locally (DP-SGD under DP)."""
    import torch

    from jupyter_fed.packages.glm import _dp, _torch

    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    width = len(data.predictors)
    private = cfg.differential_privacy_params is not None
    handle = _eval_handle(datasets, private)
    outputs: dict[str, Any] = {"metrics": {}}
    if handle is not None:
        outputs["metrics"], outputs["diagnostics"] = _metrics(
            cfg, data, handle, raw_coefficients(tensors, width), _granted(ctx, datasets, handle))
    train = datasets["train"]
    _check(train, data)
    net = _torch.load(_torch.build(width, cfg.standardize), tensors)
    opt = _optimizer(cfg, net)
    lr = float(cfg.optimizer.params.get("learning_rate", cfg.optimizer.params.get("lr", 0.01)))
    prox = functools.partial(_torch.proximal, net, lr, cfg.l1, cfg.l2)
    family, link = cfg.ml_task.type, cfg.ml_task.link
    per_example = lambda eta, target: _torch.half_deviance(family, link, eta, target)  # noqa: E731
    started = time.monotonic()
    step = functools.partial(_sgd_step, net, opt, per_example, prox)
    if private or cfg.balance_train_datasets:
        x, y, y_np = _in_memory(train, data, cfg)
        n = len(y)
    if private:
        dp = cfg.differential_privacy_params
        assert dp is not None
        plan = _dp.granted_round(ctx, params, n)
        report = _dp.train(ctx, net, opt, per_example, x, y, max_grad_norm=dp.max_grad_norm,
                           epochs=cfg.local_epochs, plan=plan, after_step=prox).as_dict()
        outputs["privacy"] = report
        outputs["train"] = {"train_num_examples": n, "privacy": report}
    elif cfg.balance_train_datasets:
        gen = torch.Generator().manual_seed(round_seed(cfg.seed, ctx.round))
        rows = torch.from_numpy(balanced_index(y_np, round_seed(cfg.seed, ctx.round)))
        n = len(rows)
        net.train()
        total = 0.0
        for _epoch in range(cfg.local_epochs):
            total = 0.0
            order = rows[torch.randperm(n, generator=gen)]
            for b in range(0, n, cfg.batch_size):
                idx = order[b:b + cfg.batch_size]
                total += step(x[idx], y[idx]) * len(idx)
            ctx.progress((_epoch + 1) / cfg.local_epochs, f"epoch {_epoch + 1}")
        outputs["train"] = {"train_num_examples": n}
        if _granted(ctx, datasets, train):  # the training loss is an evaluation on its rows
            outputs["train"]["train_loss"] = total / n
    else:
        net.train()
        n, total = 0, 0.0
        seed = round_seed(cfg.seed, ctx.round)
        for epoch in range(cfg.local_epochs):
            n, total = 0, 0.0
            for block in train.batches([*data.predictors, data.target], cfg.batch_size,
                                       seed=seed, epoch=epoch):
                _target_ok(family, block[:, -1].astype(np.float64), train.info.name,
                           data.target)
                x_b = torch.from_numpy(np.ascontiguousarray(block[:, :-1]))
                total += step(x_b, torch.from_numpy(block[:, -1:].copy())) * len(block)
                n += len(block)
            ctx.progress((epoch + 1) / cfg.local_epochs, f"epoch {epoch + 1}")
        if n == 0:
            raise ConfigError(f"dataset {train.info.name!r} has no rows", "")
        outputs["train"] = {"train_num_examples": n}
        if _granted(ctx, datasets, train):  # the training loss is an evaluation on its rows
            outputs["train"]["train_loss"] = total / n
    outputs["train"]["train_seconds"] = time.monotonic() - started
    weights = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    if not all(np.isfinite(w).all() for w in weights.values()):
        raise ConfigError("training diverged (the weights are not finite)",
                          "lower the optimizer's learning_rate, or set normalize: true")
    return StepResult(tensors=weights, outputs=outputs, num_examples=n)


def _sgd_step(net: Any, opt: Any, per_example: Any, prox: Any, x: Any, y: Any) -> float:
    """One SGD step on a batch and the penalty's proximal step; the batch's mean loss."""
    opt.zero_grad(set_to_none=True)
    loss = per_example(net(x), y).mean()
    loss.backward()
    opt.step()
    prox()
    return float(loss.item())


def _in_memory(train: DatasetHandle, data: GLMData, cfg: GLMConfig) -> tuple[Any, Any, np.ndarray]:
    """Every training row in memory (DP-SGD's Poisson sampling and balanced undersampling need
    random access), refused for a dataset the runner streams."""
    import torch

    need_in_memory(train, [*data.predictors, data.target])
    y_np = train.to_numpy([data.target], np.float64)[:, 0]
    _target_ok(cfg.ml_task.type, y_np, train.info.name, data.target)
    x = torch.from_numpy(train.to_numpy(data.predictors, np.float32))
    return x, torch.from_numpy(y_np.astype(np.float32)).unsqueeze(1), y_np


def _optimizer(cfg: GLMConfig, net: Any) -> Any:
    import torch

    kw = dict(cfg.optimizer.params)
    if "learning_rate" in kw:
        kw["lr"] = kw.pop("learning_rate")
    params = [p for p in net.parameters() if p.requires_grad]
    try:
        return getattr(torch.optim, cfg.optimizer.name)(params, **kw)
    except TypeError as exc:
        raise ConfigError(f"model_config.optimizer.params: {exc}",
                          f"use parameters that torch.optim.{cfg.optimizer.name} accepts") from None


def evaluate(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> StepResult:
    """SGD solver: metrics of the received model on ``test`` (else ``train``, but not under DP)."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    handle = _eval_handle(datasets, cfg.differential_privacy_params is not None)
    if handle is None:
        return StepResult(outputs={"metrics": {}})
    coef = raw_coefficients(tensors, len(data.predictors))
    metrics, diagnostics = _metrics(cfg, data, handle, coef, _granted(ctx, datasets, handle))
    return StepResult(outputs={"metrics": metrics, "diagnostics": diagnostics},
                      num_examples=int(metrics.get("test_num_examples", 0)))
