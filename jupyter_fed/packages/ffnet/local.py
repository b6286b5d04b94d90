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
from jupyter_fed.packages._options import balanced_index, need_in_memory, round_seed
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.ffnet import _dp, _net
from jupyter_fed.packages.ffnet._cost import EVAL_ROWS
from jupyter_fed.packages.ffnet.config import FFNetConfig, FFNetData, parse


def _check_columns(handle: DatasetHandle, data: FFNetData) -> None:
    names = {c.name for c in handle.info.columns}
    missing = [c for c in [*data.predictors, data.target] if c not in names]
    if missing:
        raise ConfigError(f"dataset {handle.info.name!r} has no column(s) {', '.join(missing)}",
                          "check data_config predictors/target against the catalog schema")


def _labels(cfg: FFNetConfig, y_np: np.ndarray, handle: DatasetHandle, data: FFNetData) -> Any:
    """The target as torch wants it: class indices (int64) or a float32 column; checked."""
    import torch

    if cfg.ml_task.type == "classification":
        classes = cfg.model.params.output_size
        if len(y_np) and ((y_np != np.round(y_np)).any() or y_np.min() < 0 or
                          y_np.max() >= classes):
            raise ConfigError(f"target {data.target!r} of dataset {handle.info.name!r} must hold "
                              f"class labels 0..{classes - 1} for classification",
                              "set model.params.output_size to the number of classes")
        return torch.from_numpy(y_np.astype(np.int64))
    return torch.from_numpy(y_np.astype(np.float32)).unsqueeze(1)


def _arrays(handle: DatasetHandle, data: FFNetData, cfg: FFNetConfig) -> tuple[Any, Any]:
    """Every row in memory: for the steps that need random access to all of them (balanced
    undersampling, DP-SGD's Poisson sampling), refused for a dataset the runner streams."""
    import torch

    _check_columns(handle, data)
    need_in_memory(handle, [*data.predictors, data.target])
    x = torch.from_numpy(handle.to_numpy(data.predictors, np.float32))
    return x, _labels(cfg, handle.to_numpy([data.target], np.float64)[:, 0], handle, data)


def _batch(cfg: FFNetConfig, block: np.ndarray, handle: DatasetHandle, data: FFNetData
           ) -> tuple[Any, Any]:
    """One block of ``batches`` (predictors then target) as torch inputs and targets."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(block[:, :-1]))
    return x, _labels(cfg, block[:, -1], handle, data)


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


def _metrics(cfg: FFNetConfig, net: Any, handle: DatasetHandle, data: FFNetData, prefix: str,
             grant: dict[str, Any] | None = None) -> dict[str, Any]:
    """Loss and accuracy/AUC (or R²) of ``net`` on ``handle``'s rows, read in blocks of
    :data:`EVAL_ROWS` (memory: a block, and per row its loss, label and predicted probabilities,
    which the AUC needs): exact for the round's evaluation, noisy (``privacy.evaluation``, no
    diagnostics) when the runner charged this one as an extra query."""
    import torch

    _check_columns(handle, data)
    classes = cfg.ml_task.type == "classification"
    width = cfg.model.params.output_size if classes else 1
    rows = _PerRow(handle.num_rows, width, classes)
    class_weights = cfg.ml_task.params.get("loss_weights") if classes else None
    per_row, weight_sum = _loss_fn(cfg, "none"), 0.0
    net.eval()
    with torch.no_grad():
        for block in handle.batches([*data.predictors, data.target], EVAL_ROWS):
            x, y = _batch(cfg, block, handle, data)
            out = net(x)
            loss = per_row(out, y).reshape(len(y), -1).numpy()
            if class_weights:
                weight_sum += float(np.asarray(class_weights, np.float64)[y.numpy()].sum())
            rows.add(loss, torch.softmax(out, dim=1).numpy() if classes else out.numpy(),
                     y.numpy() if classes else y.numpy()[:, 0])
    losses, out_all, y_all = rows.arrays()
    if grant and grant.get("evaluation") == "noisy":
        from jupyter_fed.privacy.evaluation import noisy_metrics

        hits = out_all.argmax(1) == y_all if classes else None
        return noisy_metrics(losses, hits, float(grant["evaluation_epsilon"]),
                             float(grant["evaluation_loss_bound"]), prefix)
    n = len(y_all)
    # torch's "mean" reduction: over the class weights of the rows when there are any
    denominator = weight_sum if class_weights else float(n)
    metrics = {f"{prefix}loss": float(losses.sum(dtype=np.float64)) / denominator
               if denominator else float("nan"), f"{prefix}num_examples": n}
    if classes:
        metrics[f"{prefix}accuracy"] = float((out_all.argmax(1) == y_all).mean())
        metrics[f"{prefix}roc_auc"] = roc_auc(y_all, out_all)
        metrics["diagnostics"] = {"predicted_classes": len(np.unique(out_all.argmax(1))),
                                  "test_rows": n}
    else:
        metrics[f"{prefix}r2"] = r2(y_all, out_all[:, 0])
    return metrics


class _PerRow:
    """Per-row results of an evaluation, filled block by block into arrays made once (the
    registered row count; more rows, from a file changed since, still fit)."""

    def __init__(self, rows: int, width: int, classes: bool) -> None:
        self.loss = np.empty(rows, np.float32)
        self.out = np.empty((rows, width), np.float64 if classes else np.float32)
        self.y = np.empty(rows, np.int64 if classes else np.float32)
        self.n = 0

    def add(self, loss: np.ndarray, out: np.ndarray, y: np.ndarray) -> None:
        end = self.n + len(y)
        if end > len(self.y):
            grow = max(end, 2 * len(self.y))
            self.loss, self.out, self.y = (np.resize(a, (grow, *a.shape[1:]))
                                           for a in (self.loss, self.out, self.y))
        self.loss[self.n:end] = loss.mean(1)
        self.out[self.n:end] = out
        self.y[self.n:end] = y
        self.n = end

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.loss[:self.n], self.out[:self.n], self.y[:self.n]


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

    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    net = _net.load_numpy(_net.build(cfg), tensors)
    private = cfg.differential_privacy_params is not None
    handle = _eval_handle(datasets, private)
    outputs: dict[str, Any] = {"metrics": {}}
    if handle is not None:
        outputs["metrics"] = _metrics(cfg, net, handle, data, "test_",
                                      _grant(ctx, datasets, handle))
        outputs["diagnostics"] = outputs["metrics"].pop("diagnostics", {})
    train = datasets["train"]
    _check_columns(train, data)
    if private:
        x, y = _arrays(train, data, cfg)
        return _fit_private(ctx, cfg, params, net, x, y, outputs)
    balanced = cfg.balance_train_datasets and cfg.ml_task.type == "classification"
    loss_fn, opt = _loss_fn(cfg), _optimizer(cfg, net.parameters())
    grant = (ctx.policy.get("train") or {}).get("grant")
    # Beyond the round's one exact evaluation on its rows, the training loss is released with
    # noise over per-row losses of the last epoch (collected only then).
    rows_loss: list[Any] | None = [] if (grant or {}).get("evaluation") == "noisy" else None
    per_row = _loss_fn(cfg, "none") if rows_loss is not None else None
    started = time.monotonic()
    net.train()
    if balanced:
        n, train_loss = _train_balanced(ctx, cfg, net, opt, loss_fn, *_arrays(train, data, cfg),
                                        per_row=per_row, rows=rows_loss)
    else:
        n, train_loss = _train_streamed(ctx, cfg, net, opt, loss_fn, train, data,
                                        per_row=per_row, rows=rows_loss)
    if not np.isfinite(train_loss):
        raise ConfigError("training diverged (the loss is not finite)",
                          "lower the optimizer's learning_rate")
    outputs["train"] = {**_train_loss(train_loss, rows_loss or [], grant),
                        "train_num_examples": int(n),
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


def _step(net: Any, opt: Any, loss_fn: Any, x: Any, y: Any, per_row: Any = None,
          rows: list[Any] | None = None) -> float:
    opt.zero_grad(set_to_none=True)
    out = net(x)
    loss = loss_fn(out, y)
    if per_row is not None and rows is not None:  # for a noisy training loss
        rows.append(per_row(out.detach(), y).reshape(len(y), -1).mean(1))
    loss.backward()
    opt.step()
    return float(loss.item())


def _train_streamed(ctx: StepContext, cfg: FFNetConfig, net: Any, opt: Any, loss_fn: Any,
                    handle: DatasetHandle, data: FFNetData, per_row: Any = None,
                    rows: list[Any] | None = None) -> tuple[int, float]:
    """Local epochs over ``handle.batches``: one shuffled order per epoch from the round's seed,
    the same whether the rows are in memory or streamed. Returns (rows, last epoch's loss)."""
    seed, bs = round_seed(cfg.seed, ctx.round), cfg.batch_size
    total = cfg.local_epochs * max(1, -(-handle.num_rows // bs))
    done, n, train_loss = 0, 0, 0.0
    for epoch in range(cfg.local_epochs):
        n, train_loss = 0, 0.0
        if rows is not None:
            rows.clear()  # the last epoch's losses only
        for block in handle.batches([*data.predictors, data.target], bs, seed=seed, epoch=epoch):
            x, y = _batch(cfg, block, handle, data)
            train_loss += _step(net, opt, loss_fn, x, y, per_row, rows) * len(y)
            n += len(y)
            done += 1
            if done % 50 == 0:
                ctx.progress(min(done / total, 1.0), f"epoch {epoch + 1}/{cfg.local_epochs}")
    return n, train_loss / max(n, 1)


def _train_balanced(ctx: StepContext, cfg: FFNetConfig, net: Any, opt: Any, loss_fn: Any,
                    x: Any, y: Any, per_row: Any = None, rows: list[Any] | None = None
                    ) -> tuple[int, float]:
    """Local epochs over a class-balanced undersample of rows held in memory."""
    import torch

    seed = round_seed(cfg.seed, ctx.round)
    gen = torch.Generator().manual_seed(seed)
    index = torch.from_numpy(balanced_index(y.numpy(), seed))
    n, bs = len(index), cfg.batch_size
    batches_per_epoch = max(1, -(-n // bs))
    total = cfg.local_epochs * batches_per_epoch
    done, train_loss = 0, 0.0
    for epoch in range(cfg.local_epochs):
        order = index[torch.randperm(n, generator=gen)]
        train_loss = 0.0
        if rows is not None:
            rows.clear()
        for b in range(batches_per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            train_loss += _step(net, opt, loss_fn, x[idx], y[idx], per_row, rows) * len(idx)
            done += 1
            if done % 50 == 0:
                ctx.progress(done / total, f"epoch {epoch + 1}/{cfg.local_epochs}")
    return n, train_loss / max(n, 1)


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
    metrics = _metrics(cfg, net, handle, data, "test_", _grant(ctx, datasets, handle))
    diagnostics = metrics.pop("diagnostics", {})
    return StepResult(outputs={"metrics": metrics, "diagnostics": diagnostics},
                      num_examples=int(metrics["test_num_examples"]))


def _grant(ctx: StepContext, datasets: dict[str, DatasetHandle], handle: DatasetHandle
           ) -> dict[str, Any] | None:
    """What the runner granted for the rows ``handle`` holds (exact or noisy evaluation)."""
    role = next((r for r, h in datasets.items() if h is handle), None)
    return (ctx.policy.get(role) or {}).get("grant") if role else None
