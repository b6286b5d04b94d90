"""Runner half of gbm: sketches, gradient histograms and evaluations of one silo's rows.

``sketch`` (round 0): a DDSketch of every predictor of the training rows, its buckets pooled
into groups of at least ``min_count`` rows before they leave (see ``_sketch``), and the target's
summary for the intercept-only model (class counts — a class with fewer rows than the minimum is
only flagged present — or the row count and target sum).

``grow`` (one per tree level): the gradient histograms of the open nodes of the trees being
grown, for the model made of the trees received; a node holding fewer of this silo's rows than
the minimum is withheld (see ``_hist``). At level 0 it also measures the received model on the
test rows (the training rows when there are none): that is the round's one evaluation.

``evaluate``: the final model's metrics.

Sketches and histograms are exact aggregates of the whole registered dataset (or of its balanced
undersample): the runner's minimum rows apply, and a dataset whose policy requires differential
privacy refuses them. What they may reveal: a sketch, nothing finer than a group of ``k`` rows
(pooled buckets, each at its median); a node's histogram, for each predictor and bin, the sum of
the gradients and hessians and the count of the node's rows there. Nodes are held to the
release minimum, but the bins inside a node are not pooled (pooling them would not survive the
coordinator subtracting one node's histogram from its parent's): a bin may hold a few rows, and
their gradients are their labels' residuals. Secure aggregation leaves the coordinator only the
sum over the runners; a custodian who cannot accept even that marks the dataset ``require_dp``.

Metrics are exact only when the runner granted the exact evaluation of the round; otherwise they
are differentially private (loss and accuracy, see ``privacy.evaluation``). No row or cell value
leaves, nor appears in an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.packages._options import balanced_index, round_seed
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.gbm import _loss, _memo, _read
from jupyter_fed.packages.gbm._hist import histograms
from jupyter_fed.packages.gbm._trees import Ensemble
from jupyter_fed.packages.gbm.config import GBMConfig, GBMData, parse

__all__ = ["estimate", "evaluate", "grow", "privacy_cost", "sketch"]

MAX_CLASSES = 1000


def _check(handle: DatasetHandle, data: GBMData) -> None:
    cols = {c.name: c for c in handle.info.columns}
    missing = [c for c in [*data.predictors, data.target] if c not in cols]
    if missing:
        raise ConfigError(f"dataset {handle.info.name!r} has no column(s) {', '.join(missing)}",
                          "check data_config predictors/target against the catalog schema")
    ids = [c for c in [*data.predictors, data.target] if cols[c].role == "id"]
    if ids:
        raise ConfigError(f"{', '.join(ids)} of dataset {handle.info.name!r} are id columns",
                          "id columns identify rows and are never used as numbers")


def _target_check(handle: DatasetHandle, data: GBMData, cfg: GBMConfig,
                  n_classes: int | None = None) -> Callable[[np.ndarray], None]:
    """Checks a block of the target: labels ``0..n_classes-1`` (classification) or finite."""
    where = f"target {data.target!r} of dataset {handle.info.name!r}"
    top = MAX_CLASSES if n_classes is None else n_classes

    def check(y: np.ndarray) -> None:
        if not np.isfinite(y).all():
            raise ConfigError(f"{where} holds infinite values", "fix or drop those rows")
        if cfg.classification and len(y) and \
                ((y != np.round(y)).any() or y.min() < 0 or y.max() >= top):
            raise ConfigError(f"{where} must hold class labels 0..{top - 1} for classification",
                              "encode the classes as 0..k-1, or use ml_task.type 'regression'")

    return check


def _minimum(ctx: StepContext, role: str) -> int:
    """Fewest rows behind a node's histogram: the policy's release minimum for one predictor."""
    from jupyter_fed.privacy.suppression import release_minimum

    return release_minimum(ctx.policy.get(role) or {}, 1)


def sketch(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
           tensors: dict[str, np.ndarray]) -> StepResult:
    """Every predictor's coarsened DDSketch, and the target's summary (see module doc)."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    handle = datasets["train"]
    _check(handle, data)
    k = int((ctx.policy.get("train") or {}).get("min_count") or 10)
    alpha = cfg.params.sketch_relative_accuracy
    ctx.progress(0.0, "sketching predictors")
    sketches, class_counts, rows, y_sum = _read.sketches(
        handle, data.predictors, data.target, alpha, k, _target_check(handle, data, cfg),
        cfg.classification)
    if rows == 0:
        raise ConfigError(f"dataset {handle.info.name!r} has no rows", "")
    _no_differencing(ctx, handle, rows)
    parts = [(np.full(len(keys), j, np.int32), sign, keys, counts)
             for j, (sign, keys, counts) in enumerate(sketches)]
    out = {f"sketch.{name}": np.concatenate([p[i] for p in parts])
           for i, name in enumerate(("feature", "sign", "key", "count"))}
    outputs: dict[str, Any] = {"count": rows}
    if cfg.classification:
        counts = class_counts.astype(np.float64)
        if cfg.balance_train_datasets:
            counts[counts > 0] = counts[counts > 0].min()
        small = (counts > 0) & (counts < _minimum(ctx, "train"))
        outputs["small_classes"] = [int(c) for c in np.flatnonzero(small)]
        counts[small] = 0.0
        out["target"] = counts
    else:
        out["target"] = np.array([float(rows), y_sum])
    return StepResult(tensors=out, outputs=outputs, num_examples=rows)


def _no_differencing(ctx: StepContext, handle: DatasetHandle, rows: int) -> None:
    """Sketches and histograms are exact whole-dataset answers: the differencing rule holds them
    to row sets that differ from every earlier exact answer on the file by ``0`` or ``>= m`` rows."""
    from jupyter_fed.privacy.differencing import RowSets, file_bits
    from jupyter_fed.privacy.suppression import release_minimum

    policy = ctx.policy.get("train") or {}
    group = str((policy.get("grant") or {}).get("group") or handle.info.name)
    minimum = release_minimum(policy, 1)
    bits = file_bits(handle, np.packbits(np.ones(rows, dtype=bool)))
    memory = RowSets(ctx.cache_dir)
    with memory.locked(group):
        if memory.nearest(group, bits, minimum) is not None:
            raise PermissionDenied(
                f"the rows of {handle.info.name!r} differ from those of an earlier exact answer "
                f"by fewer than {minimum} rows: gbm's sketches would describe those rows",
                "train on a dataset the custodian registered otherwise")
        memory.remember(group, [bits])


def _model(params: dict[str, Any], tensors: dict[str, np.ndarray], cfg: GBMConfig
           ) -> tuple[Ensemble, int]:
    n_classes = params.get("n_classes")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or \
            not (n_classes >= 2 if cfg.classification else n_classes == 1) or \
            n_classes > MAX_CLASSES:
        raise ConfigError("step params: n_classes is missing or invalid", "")
    try:
        ens = Ensemble.from_tensors(tensors, cfg.params.max_depth)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"step input: {exc}", "the coordinator sends the trees and edges") \
            from None
    if ens.n_trees_per_iteration != _loss.trees_per_iteration(cfg.classification, n_classes):
        raise ConfigError("step input: the baseline does not match n_classes", "")
    return ens, n_classes


def _binned(handle: DatasetHandle, data: GBMData, cfg: GBMConfig, ens: Ensemble,
            n_classes: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """(bin codes, target, memo key) of a dataset's rows under the ensemble's edges."""
    _check(handle, data)
    if len(ens.n_edges) != len(data.predictors):
        raise ConfigError("step input: edges do not match the predictors", "")
    key = _memo.data_key(handle, [*data.predictors, data.target])
    edges = _memo.digest(ens.edges, ens.n_edges) if key is not None else ""
    read: list[tuple[np.ndarray, np.ndarray]] = []  # one pass serves both when both miss

    def rows() -> tuple[np.ndarray, np.ndarray]:
        if not read:
            read.append(_read.binned(handle, data.predictors, data.target, ens.edges, ens.n_edges,
                                     _target_check(handle, data, cfg,
                                                   n_classes if cfg.classification else None)))
        return read[0]

    codes = _memo.cached(None if key is None else (key, "codes", edges), lambda: rows()[0])
    y = _memo.cached(None if key is None else (key, "y", n_classes), lambda: rows()[1])
    return codes, y, key


def _measure(ctx: StepContext, datasets: dict[str, DatasetHandle], cfg: GBMConfig,
             data: GBMData, ens: Ensemble, n_classes: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics of ``ens`` on ``test`` (else ``train``): exact, or noisy when only that was granted."""
    role = "test" if "test" in datasets else "train"
    codes, y, key = _binned(datasets[role], data, cfg, ens, n_classes)
    raw = _memo.raw_predictions(key, ens, codes)
    grant = (ctx.policy.get(role) or {}).get("grant") or {}
    if grant.get("evaluation") == "noisy":
        from jupyter_fed.privacy.evaluation import noisy_metrics

        losses = _loss.per_row_loss(raw, y, cfg.classification, n_classes)
        hits = _loss.probabilities(raw, n_classes).argmax(1) == y if cfg.classification else None
        return noisy_metrics(losses, hits, float(grant["evaluation_epsilon"]),
                             float(grant["evaluation_loss_bound"]), "test_"), {}
    return _loss.metrics(raw, y, cfg.classification, n_classes)


def grow(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    """Histograms of the open nodes at ``level`` (and at level 0, the received model's metrics)."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    ens, n_classes = _model(params, tensors, cfg)
    level = params.get("level")
    if isinstance(level, bool) or not isinstance(level, int) or \
            not 0 <= level < cfg.params.max_depth:
        raise ConfigError("step params: level is missing or out of range", "")
    try:
        feature, bins = tensors["tree.feature"], tensors["tree.bin"]
        open_nodes = tensors["open"].astype(bool)
        width = int(params["bins"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("step input: the trees being grown are missing", "") from None
    if feature.shape != open_nodes.shape or bins.shape != open_nodes.shape or \
            open_nodes.shape != ens.arrays["feature"].shape[1:] or \
            not int(ens.n_edges.max(initial=0)) + 1 <= width <= 256 or \
            (feature >= len(data.predictors)).any():
        raise ConfigError("step input: the trees being grown do not match the model", "")
    outputs: dict[str, Any] = {}
    if level == 0:
        outputs["metrics"], outputs["diagnostics"] = _measure(ctx, datasets, cfg, data, ens,
                                                              n_classes)
    handle = datasets["train"]
    codes, y, key = _binned(handle, data, cfg, ens, n_classes)
    raw = _memo.raw_predictions(key, ens, codes)
    # the same gradients serve every level of the iteration: remember them with the model
    grad, hess = _memo.cached_pair(None if key is None else (key, _memo.prefix_digests(ens)[-1],
                                                             "gradients"),
                                   lambda: _loss.gradients(raw, y, cfg.classification, n_classes))
    feature, bins = feature.astype(np.int32), bins.astype(np.uint8)
    nodes = _memo.tree_nodes(key, _memo.prefix_digests(ens)[-1], feature, bins, codes, level)
    if cfg.balance_train_datasets:
        rows = balanced_index(y, round_seed(cfg.draw_seed, ctx.round))
        codes, y, grad, nodes = codes[:, rows], y[rows], grad[rows], nodes[:, rows]
        hess = None if hess is None else hess[rows]
    ctx.progress(0.5, f"histograms of level {level}")
    hist, withheld = histograms(codes, grad, hess, feature, bins, open_nodes, level, width,
                                _minimum(ctx, "train"), threads=ctx.threads, nodes=nodes)
    outputs["withheld"] = withheld
    return StepResult(tensors={"hist": hist}, outputs=outputs, num_examples=len(y))


def evaluate(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> StepResult:
    """Metrics of the received (final) model on ``test`` (else ``train``)."""
    cfg, data = parse(params.get("model_config"), params.get("data_config"))
    ens, n_classes = _model(params, tensors, cfg)
    metrics, diagnostics = _measure(ctx, datasets, cfg, data, ens, n_classes)
    return StepResult(outputs={"metrics": metrics, "diagnostics": diagnostics},
                      num_examples=int(metrics.get("test_num_examples", 0)))


def privacy_cost(step: str, params: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """Nothing spent (exact aggregates: ``require_dp`` datasets refuse them); ``grow`` is a
    training round; its level-0 exchange and ``evaluate`` measure a model on rows."""
    from jupyter_fed.packages._costs import exact_costs

    level = params.get("level") if isinstance(params, dict) else None
    deeper = isinstance(level, int) and not isinstance(level, bool) and level > 0
    measuring = ("evaluate",) if deeper else ("grow", "evaluate")
    return exact_costs(step, facts, training=("grow",), measuring=measuring, measures_train=True)


def estimate(step: str, params: dict[str, Any], rows: dict[str, int]) -> int:
    """Peak bytes of a step: bin codes of the rows (one byte a cell: the float rows are read in
    blocks, see ``_read``), per-tree gradients and raw predictions, and the histograms (open
    nodes × predictors × bins × 3 float64)."""
    cfg, data = parse((params or {}).get("model_config"), (params or {}).get("data_config"))
    n_classes = params.get("n_classes") if isinstance(params.get("n_classes"), int) else 2
    k = _loss.trees_per_iteration(cfg.classification, max(int(n_classes), 1))
    f = len(data.predictors)
    n = rows.get("train", 0) + rows.get("test", 0)
    per_row = f + 8 * k * 6 + 16  # bin codes (``_read``), per-tree state, target and nodes
    nodes = k * 2 ** (cfg.params.max_depth - 1)
    hist = nodes * f * (cfg.params.max_bins + 1) * 3 * 8 * 2 if step == "grow" else 0
    return int(n * per_row + hist)
