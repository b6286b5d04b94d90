"""Round 0 at the coordinator: the runners' sketches and target summaries merged into the shared
bin edges, the number of classes and the intercept-only model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from jupyter_fed.errors import SessionFailed, UpdateRejected
from jupyter_fed.packages._io import Answer
from jupyter_fed.packages.gbm import _loss, _sketch
from jupyter_fed.packages.gbm._trees import Ensemble
from jupyter_fed.packages.gbm.config import GBMConfig

__all__ = ["Start", "merge_start"]

SMALL_CLASS = 5.0
"""Rows assumed, for the intercept-only model, of a class a runner only flagged as present (it
holds fewer rows of it than its minimum, so it did not say how many): a neutral guess below
any runner's minimum; the trees correct it within a few iterations."""


@dataclass
class Start:
    ensemble: Ensemble
    n_classes: int
    rows: dict[str, int]
    """Training rows per client."""


def _sketch_of(a: Answer, n_features: int) -> tuple[np.ndarray, ...]:
    try:
        feature = np.asarray(a.tensors["sketch.feature"], np.int64)
        sign = np.asarray(a.tensors["sketch.sign"], np.int64)
        key = np.asarray(a.tensors["sketch.key"], np.int64)
        count = np.asarray(a.tensors["sketch.count"], np.float64)
    except KeyError:
        raise UpdateRejected(f"client {a.client_id} sent no sketches") from None
    n = len(feature)
    if not (feature.ndim == sign.ndim == key.ndim == count.ndim == 1 and
            len(sign) == len(key) == len(count) == n) or (n and (
            feature.min() < 0 or feature.max() >= n_features or
            not np.isin(sign, (-1, 0, 1)).all() or not np.isfinite(count).all() or
            count.min() < 0 or np.abs(key).max() > 2**40)):
        raise UpdateRejected(f"client {a.client_id} sent malformed sketches")
    return feature, sign, key, count


def merge_start(cfg: GBMConfig, n_features: int, answers: Iterable[Answer]) -> Start:
    """Edges, classes and baseline from every client's ``sketch`` answer (malformed answers
    raise ``SessionFailed`` naming the client)."""
    answers = list(answers)
    parts = []
    for a in answers:
        try:
            parts.append(_sketch_of(a, n_features))
        except UpdateRejected as exc:
            raise SessionFailed(f"preparing the bin edges failed: {exc.message}", "") from None
    feature, sign, key, count = (np.concatenate([p[i] for p in parts]) for i in range(4))
    p = cfg.params
    edges = np.zeros((n_features, p.max_bins - 1))
    n_edges = np.zeros(n_features, np.int32)
    order = np.argsort(feature, kind="stable")
    bounds = np.searchsorted(feature[order], np.arange(n_features + 1))
    for j in range(n_features):
        rows = order[bounds[j]:bounds[j + 1]]
        e = _sketch.edges_from_sketches(sign[rows].astype(np.int8), key[rows], count[rows],
                                        p.sketch_relative_accuracy, p.max_bins)
        edges[j, :len(e)], n_edges[j] = e, len(e)
    n_classes, target = _target(cfg, answers)
    baseline = _loss.baseline(cfg.classification, n_classes, target)
    ens = Ensemble(baseline, p.max_depth, edges, n_edges)
    return Start(ens, n_classes, {a.client_id: int(a.outputs.get("count", a.num_examples))
                                  for a in answers})


def _target(cfg: GBMConfig, answers: list[Answer]) -> tuple[int, np.ndarray]:
    if not cfg.classification:
        total = np.zeros(2)
        for a in answers:
            t = np.asarray(a.tensors.get("target", np.zeros(0)), np.float64)
            if t.shape != (2,) or not np.isfinite(t).all() or t[0] < 0:
                raise SessionFailed(f"client {a.client_id} sent a malformed target summary", "")
            total += t
        return 1, total
    sizes = []
    for a in answers:
        t = np.asarray(a.tensors.get("target", np.zeros(0)), np.float64)
        small = [int(c) for c in a.outputs.get("small_classes", []) if isinstance(c, int)]
        if t.ndim != 1 or not np.isfinite(t).all() or (t.size and t.min() < 0) or \
                any(not 0 <= c < len(t) for c in small):
            raise SessionFailed(f"client {a.client_id} sent malformed class counts", "")
        sizes.append((t, small))
    n_classes = max(len(t) for t, _ in sizes)
    counts = np.zeros(n_classes)
    for t, small in sizes:
        counts[:len(t)] += t
        counts[small] += SMALL_CLASS
    if n_classes < 2 or (counts == 0).any():
        missing = [c for c in range(n_classes) if counts[c] == 0]
        raise SessionFailed("classification needs at least two classes labelled 0..k-1 across "
                            "the training rows" + (f"; no rows of class(es) {missing}"
                                                   if missing else ""),
                            "check the target column, or use ml_task.type 'regression'")
    return n_classes, counts
