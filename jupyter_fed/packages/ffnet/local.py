"""Runner half of ffnet: evaluate the incoming global model, then train it on this silo.

Only parameters and aggregate metrics leave: the state dict of the locally trained network, the
loss/accuracy/AUC (or R²) on the silo's test rows, the training loss, and the number of training
examples. The training loss measures the model on the training rows (with a learning rate of 0,
the incoming one): like the test metrics, it is exact only for the round's one evaluation the
runner grants on ``train`` and noisy beyond it.

With ``differential_privacy_params`` the training is DP-SGD (see ``_dp``) and nothing computed
from the training rows leaves except the DP weights: no training loss, and no evaluation on the
training rows when the client has no separate test set.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._metrics import r2, roc_auc
from jupyter_fed.packages._options import balanced_index, round_seed
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.ffnet import _dp, _net
from jupyter_fed.packages.ffnet.config import FFNetConfig, FFNetData, parse


def _check_columns(handle: DatasetHandle, data: FFNetData) -> None:
    names = {c.name for c in handle.info.columns}
    missing = [c for c in [*data.predictors, data.target] if c not in names]
    if missing:
        raise ConfigError(f"dataset {handle.info.name!r} has no column(s) {', '.join(missing)}",
                          "check data_config predictors/target against the catalog schema")


def _arrays(handle: DatasetHandle, data: FFNetData, cfg: FFNetConfig) -> tuple[Any, Any]:
    import torch

    _check_columns(handle, data)
    x = torch.from_numpy(handle.to_numpy(data.predictors, np.float32))
    y_np = handle.to_numpy([data.target], np.float64)[:, 0]
    if cfg.ml_task.type == "classification":
        classes = cfg.model.params.output_size
        if (y_np != np.round(y_np)).any() or y_np.min() < 0 or y_np.max() >= classes:
            raise ConfigError(f"target {data.target!r} of dataset {handle.info.name!r} must hold "
                              f"class labels 0..{classes - 1} for classification",
                              "set model.params.output_size to the number of classes")
        y = torch.from_numpy(y_np.astype(np.int64))
    else:
        y = torch.from_numpy(y_np.astype(np.float32)).unsqueeze(1)
    return x, y


def _loss_fn(cfg: FFNetConfig, reduction: str = "mean") -> Any:
    import torch

    if cfg.ml_task.type == "regression":
        return torch.nn.MSELoss(reduction=reduction)
    weights = cfg.ml_task.params.get("loss_weights")
    return torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32)
                                     if weights else None, reduction=reduction)


def _eval_handle(datasets: dict[str, DatasetHandle], private: bool) -> DatasetHandle | None:
    """The rows to measure the model on: ``test``, else ``train`` — but never the (DP-protected)
    training rows under differential privacy, where such metrics would escape the accounting."""
    test, train = datasets.get("test"), datasets["train"]
    if not private:
        return test or train
    return test if test is not None and test.info.name != train.info.name else None


def _metrics(cfg: FFNetConfig, net: Any, x: Any, y: Any, prefix: str,
             grant: dict[str, Any] | None = None) -> dict[str, Any]:
    """Loss and accuracy/AUC (or R²) of ``net`` on ``x, y``: exact for the round's evaluation,
    noisy (``privacy.evaluation``, no diagnostics) when the runner charged this one as an extra
    query."""
    import torch

    net.eval()
    with torch.no_grad():
        out = net(x)
        if grant and grant.get("evaluation") == "noisy":
            from jupyter_fed.privacy.evaluation import noisy_metrics

            hits = (out.argmax(1) == y).numpy() if cfg.ml_task.type == "classification" else None
            return noisy_metrics(_loss_fn(cfg, "none")(out, y).reshape(len(y), -1).mean(1).numpy(),
                                 hits, float(grant["evaluation_epsilon"]),
                                 float(grant["evaluation_loss_bound"]), prefix)
        loss = float(_loss_fn(cfg)(out, y))
    n = len(y)
    metrics = {f"{prefix}loss": loss, f"{prefix}num_examples": n}
    if cfg.ml_task.type == "classification":
        prob = torch.softmax(out, dim=1).numpy().astype(np.float64)
        labels = y.numpy()
        metrics[f"{prefix}accuracy"] = float((prob.argmax(1) == labels).mean())
        metrics[f"{prefix}roc_auc"] = roc_auc(labels, prob)
        metrics["diagnostics"] = {"predicted_classes": len(np.unique(prob.argmax(1))),
                                  "test_rows": n}
    else:
        metrics[f"{prefix}r2"] = r2(y.numpy()[:, 0], out.numpy()[:, 0])
    return metrics


def _optimizer(cfg: FFNetConfig, params: Any) -> Any:
    import torch

    kw = dict(cfg.optimizer.params)
    if "learning_rate" in kw:
        kw["lr"] = kw.pop("learning_rate")
    try:
        return getattr(torch.optim, cfg.optimizer.name)(params, **kw)
    except TypeError as exc:
        raise ConfigError(f"model_config.optimizer.params: {exc}",
                          f"use parameters that torch.optim.{cfg.optimizer.name} accepts") from None


def fit(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
        tensors: dict[str, np.ndarray]) -> StepResult:
    """Evaluate the received global model on ``test`` (else ``train``), then train it on ``train``."""
    import torch

    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    net = _net.load_numpy(_net.build(cfg), tensors)
    private = cfg.differential_privacy_params is not None
    handle = _eval_handle(datasets, private)
    outputs: dict[str, Any] = {"metrics": {}}
    if handle is not None:
        xt, yt = _arrays(handle, data, cfg)
        outputs["metrics"] = _metrics(cfg, net, xt, yt, "test_", _grant(ctx, datasets, handle))
        outputs["diagnostics"] = outputs["metrics"].pop("diagnostics", {})
    x, y = _arrays(datasets["train"], data, cfg)
    if private:
        return _fit_private(ctx, cfg, params, net, x, y, outputs)
    gen = torch.Generator().manual_seed(round_seed(cfg.seed, ctx.round))
    index = torch.from_numpy(balanced_index(y.numpy(), round_seed(cfg.seed, ctx.round))) \
        if cfg.balance_train_datasets and cfg.ml_task.type == "classification" \
        else torch.arange(len(y))
    loss_fn, opt = _loss_fn(cfg), _optimizer(cfg, net.parameters())
    grant = (ctx.policy.get("train") or {}).get("grant")
    per_row = _loss_fn(cfg, "none") if (grant or {}).get("evaluation") == "noisy" else None
    n, bs = len(index), cfg.batch_size
    batches_per_epoch = max(1, -(-n // bs))
    total = cfg.local_epochs * batches_per_epoch
    started, done, train_loss = time.monotonic(), 0, 0.0
    net.train()
    for _epoch in range(cfg.local_epochs):
        order = index[torch.randperm(n, generator=gen)]
        train_loss, rows_loss = 0.0, []  # type: float, list[Any]
        for b in range(batches_per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            opt.zero_grad(set_to_none=True)
            out = net(x[idx])
            loss = loss_fn(out, y[idx])
            if per_row is not None:  # for the noisy training loss
                rows_loss.append(per_row(out.detach(), y[idx]).reshape(len(idx), -1).mean(1))
            loss.backward()
            opt.step()
            train_loss += loss.item() * len(idx)
            done += 1
            if done % 50 == 0:
                ctx.progress(done / total, f"epoch {_epoch + 1}/{cfg.local_epochs}")
        train_loss /= n
    if not np.isfinite(train_loss):
        raise ConfigError("training diverged (the loss is not finite)",
                          "lower the optimizer's learning_rate")
    outputs["train"] = {**_train_loss(train_loss, rows_loss, grant), "train_num_examples": int(n),
                        "train_seconds": time.monotonic() - started}
    return StepResult(tensors=_net.to_numpy(net), outputs=outputs, num_examples=int(n))


def _train_loss(exact: float, rows: list[Any], grant: dict[str, Any] | None) -> dict[str, Any]:
    """The training loss (of the model as it trained, over the last epoch): a measurement of a
    model on the training rows like any other — exact for the round's one evaluation the runner
    granted on ``train``, else with noise over the per-row losses (``privacy.evaluation``)."""
    if grant is None or grant.get("evaluation") != "noisy":
        return {"train_loss": exact}
    import torch

    from jupyter_fed.privacy.evaluation import noisy_metrics

    out = noisy_metrics(torch.cat(rows).numpy(), None, float(grant["evaluation_epsilon"]),
                        float(grant["evaluation_loss_bound"]), "train_")
    out.pop("train_num_examples")
    return out


def _fit_private(ctx: StepContext, cfg: FFNetConfig, params: dict[str, Any], net: Any, x: Any,
                 y: Any, outputs: dict[str, Any]) -> StepResult:
    """DP-SGD with exactly the (epsilon, delta) the runner debited for this step."""
    plan = _dp.granted_round(ctx, params, len(y))
    dp = cfg.differential_privacy_params
    assert dp is not None
    started = time.monotonic()
    report = _dp.train(ctx, net, _optimizer(cfg, net.parameters()), _loss_fn(cfg, "none"), x, y,
                       batch_size=cfg.batch_size, epochs=cfg.local_epochs, dp=dp, plan=plan)
    weights = _net.to_numpy(net)  # ``net`` itself, not opacus' wrapper: the original names
    if not all(np.isfinite(w).all() for w in weights.values()):
        raise ConfigError("training diverged (the weights are not finite)",
                          "lower the optimizer's learning_rate or max_grad_norm")
    n = len(y)
    outputs["privacy"] = report.as_dict()
    outputs["train"] = {"train_num_examples": int(n), "train_seconds": time.monotonic() - started,
                        "privacy": report.as_dict()}
    return StepResult(tensors=weights, outputs=outputs, num_examples=int(n))


def moments(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """Count, mean and centred sum of squares of each predictor over the whole training set.

    An exact aggregate of a whole registered dataset (above the runner's minimum rows), which the
    coordinator merges into the standardisation every client then applies (``normalize``).
    """
    from jupyter_fed.packages._secure import SUMS, as_sums
    from jupyter_fed.packages.ffnet._net import merge_moments

    _cfg, data = parse(params.get("model_config"), params.get("data_config"))
    handle = datasets["train"]
    _check_columns(handle, data)
    parts = []
    for block in handle.iter_batches(data.predictors):
        if len(block):
            mean = block.mean(axis=0)
            parts.append((len(block), mean, ((block - mean) ** 2).sum(axis=0)))
        ctx.progress(0.5, "moments")
    n, mean, m2 = merge_moments(parts)
    _no_differencing(ctx, handle, len(data.predictors), int(n))
    # Under secure aggregation the coordinator adds raw sums up (Chan's merge is not a sum).
    tensors = as_sums(int(n), mean, m2) if params.get(SUMS) else {"mean": mean, "m2": m2}
    return StepResult(tensors=tensors, outputs={"count": int(n)}, num_examples=int(n))


def _no_differencing(ctx: StepContext, handle: DatasetHandle, attributes: int, rows: int
                     ) -> None:
    """Exact moments of a dataset are exact aggregates like ``stats``' : the same differencing
    rule applies (against views of the same file, and earlier answers of any package)."""
    from jupyter_fed.errors import PermissionDenied
    from jupyter_fed.privacy.differencing import RowSets, file_bits
    from jupyter_fed.privacy.suppression import release_minimum

    policy = ctx.policy.get("train") or {}
    group = str((policy.get("grant") or {}).get("group") or handle.info.name)
    minimum = release_minimum(policy, attributes)
    bits = file_bits(handle, np.packbits(np.ones(rows, dtype=bool)))
    memory = RowSets(ctx.cache_dir)
    with memory.locked(group):
        if memory.nearest(group, bits, minimum) is not None:
            raise PermissionDenied(
                f"the rows of {handle.info.name!r} differ from those of an earlier exact answer "
                f"by fewer than {minimum} rows: their feature moments would describe those rows",
                "train without normalize, or on a dataset the custodian registered otherwise")
        memory.remember(group, [bits])


def evaluate(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> StepResult:
    """Evaluate the received global model on ``test`` (or ``train`` when there is no test set,
    unless the session is differentially private: then there is nothing to report)."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    handle = _eval_handle(datasets, cfg.differential_privacy_params is not None)
    if handle is None:
        return StepResult(outputs={"metrics": {}}, num_examples=0)
    net = _net.load_numpy(_net.build(cfg), tensors)
    x, y = _arrays(handle, data, cfg)
    metrics = _metrics(cfg, net, x, y, "test_", _grant(ctx, datasets, handle))
    diagnostics = metrics.pop("diagnostics", {})
    return StepResult(outputs={"metrics": metrics, "diagnostics": diagnostics},
                      num_examples=int(metrics["test_num_examples"]))


def _grant(ctx: StepContext, datasets: dict[str, DatasetHandle], handle: DatasetHandle
           ) -> dict[str, Any] | None:
    """What the runner granted for the rows ``handle`` holds (exact or noisy evaluation)."""
    role = next((r for r, h in datasets.items() if h is handle), None)
    return (ctx.policy.get(role) or {}).get("grant") if role else None
