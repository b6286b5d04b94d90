"""A worker's memo of binned rows and raw predictions: speed only, never state.

Runners keep no state between steps: every ``grow`` step receives the bin edges and every tree
so far, and its answer is a function of those and the dataset alone. Recomputing from them is
what a step does on a cold worker. But with ``T`` trees and ``max_depth`` exchanges per tree a
session would redo ``O(T² · max_depth)`` tree evaluations over every row — for 100 trees on
100,000 rows, minutes of work to produce answers the worker computed a moment ago. So a worker
process (workers are reused, and the runner sends a dataset's steps to the worker that read it
last) remembers, by content:

- the bin codes of a dataset's predictors, by the file's identity (path, modification time,
  size), the columns and a digest of the edges;
- raw predictions after ``t`` trees, by that data key and a digest chained over the baseline and
  the first ``t`` trees; a step starts from the longest prefix of its trees it finds and applies
  only the rest (usually one tree);
- the gradients and hessians at those predictions, which every level of an iteration uses;
- the slots the rows reached in the trees being grown, so the next level (and, once the trees
  are finished, the next iteration's predictions) moves every row down one level instead of
  routing it again from the root.

A miss costs time, not correctness; a changed file, other edges or other trees are other keys.
Only the latest two models' predictions (and the latest gradients) are kept per dataset — a
session only ever extends its last model — and the whole memo stays within :data:`BUDGET`, far
below the growth after which a worker hands its memory back after every step (a full garbage
collection each time: a memo that kept every prefix made each exchange ten times slower).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jupyter_fed.packages.base import DatasetHandle, file_version
from jupyter_fed.packages.gbm._trees import Ensemble, route

__all__ = ["MEMO", "Memo", "data_key", "prefix_digests", "tree_nodes"]

BUDGET = 96 * 2**20


class Memo:
    """Arrays by key within ``budget`` bytes."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._latest: dict[Any, list[Any]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: Any, value: Any, nbytes: int) -> None:
        if nbytes > self.budget:
            return
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.budget:
                self._bytes -= self._items.popitem(last=False)[1][1]

    def put_latest(self, group: Any, key: Any, value: Any, nbytes: int, keep: int) -> None:
        """:meth:`put`, dropping all but the ``keep`` latest keys stored for ``group``."""
        self.put(key, value, nbytes)
        with self._lock:
            recent = self._latest.setdefault(group, [])
            if key in recent:
                recent.remove(key)
            recent.append(key)
            for old in recent[:-keep]:
                found = self._items.pop(old, None)
                if found is not None:
                    self._bytes -= found[1]
            del recent[:-keep]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._latest.clear()
            self._bytes = 0


MEMO = Memo()


def data_key(handle: DatasetHandle, columns: Sequence[str]) -> tuple[Any, ...] | None:
    """The identity of ``columns`` of a dataset's file; ``None`` for rows with no file."""
    if handle.path is None:
        return None
    try:
        size, mtime_ns, etag = file_version(handle.path)
    except Exception:  # a file gone, an object out of reach: no memo, the step reads the rows
        return None
    return (str(handle.path), mtime_ns, size, etag, tuple(columns))


def digest(*parts: np.ndarray | bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else
                 p if isinstance(p, bytes) else np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


def prefix_digests(ens: Ensemble) -> list[str]:
    """Digest of the baseline and edges, then of each longer prefix of the trees (computed once
    per ensemble: a step asks several times)."""
    if ens.prefix_digests is not None:
        return ens.prefix_digests
    out = [digest(ens.baseline, ens.edges, ens.n_edges)]
    feature, bins, value = (ens.arrays[k] for k in ("feature", "bin", "value"))
    for t in range(ens.n_iter):
        out.append(digest(out[-1], feature[t], bins[t], value[t]))
    ens.prefix_digests = out
    return out


def _inner(level: int) -> slice:
    """The slots of a level-order tree above depth ``level``: those that route to it."""
    return slice(0, 2**level - 1)


def tree_nodes(key: Any, model: str, feature: np.ndarray, bins: np.ndarray, codes: np.ndarray,
               level: int, memo: Memo = MEMO, remember: bool = True) -> np.ndarray:
    """Slots (K × rows) the rows reach after ``level`` levels of the trees being grown on top of
    the model digested as ``model``: from the deepest remembered level whose splits are these
    trees' splits, else from the root; ``remember``: for the next level to start from."""
    k_trees = feature.shape[0]
    start, done = None, 0
    found = memo.get((key, model, "nodes")) if key is not None else None
    if found is not None:
        was, f_was, b_was, nodes = found
        above = _inner(was)
        if was <= level and np.array_equal(f_was[:, above], feature[:, above]) and \
                np.array_equal(b_was[:, above], bins[:, above]):
            start, done = nodes, was
    out = np.stack([route(feature[k], bins[k], codes, level - done,
                          None if start is None else start[k]) for k in range(k_trees)])
    if key is not None and remember and done != level:
        out.flags.writeable = False
        memo.put_latest((key, "nodes"), (key, model, "nodes"),
                        (level, feature.copy(), bins.copy(), out), out.nbytes, keep=1)
    return out


def cached(key: Any, make: Callable[[], np.ndarray], memo: Memo = MEMO) -> np.ndarray:
    """``make()`` once per key (read-only when kept); no caching when ``key`` is ``None``."""
    if key is None:
        return make()
    found = memo.get(key)
    if found is None:
        found = make()
        found.flags.writeable = False
        memo.put(key, found, found.nbytes)
    return found


def cached_pair(key: Any, make: Callable[[], tuple[np.ndarray, np.ndarray | None]],
                memo: Memo = MEMO) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`cached` for a pair of arrays (the second may be ``None``); only the latest pair per
    ``key[0]`` (the data key) is kept."""
    if key is None:
        return make()
    found = memo.get(key)
    if found is None:
        found = make()
        for a in found:
            if a is not None:
                a.flags.writeable = False
        memo.put_latest((key[0], "pair"), key, found, sum(a.nbytes for a in found
                                                          if a is not None), keep=1)
    return found


def raw_predictions(key: Any, ens: Ensemble, codes: np.ndarray, memo: Memo = MEMO
                    ) -> np.ndarray:
    """Raw predictions (rows × K) of ``ens`` on the rows ``codes`` encodes, from the longest
    remembered prefix of its trees."""
    if key is None:
        return ens.raw_binned(codes)
    digests = prefix_digests(ens)
    start, first = None, 0
    for t in range(len(digests) - 1, -1, -1):
        found = memo.get((key, digests[t]))
        if found is not None:
            start, first = found, t
            break
    if start is not None and first == ens.n_iter - 1:
        raw = _last_tree_added(key, ens, digests[first], codes, start, memo)
    else:
        raw = ens.raw_binned(codes, start, first) if first < ens.n_iter or start is None \
            else start
    if first != ens.n_iter or start is None:
        raw.flags.writeable = False
        memo.put_latest((key, "raw"), (key, digests[-1]), raw, raw.nbytes, keep=2)
    return raw


def _last_tree_added(key: Any, ens: Ensemble, model: str, codes: np.ndarray, start: np.ndarray,
                     memo: Memo) -> np.ndarray:
    """``start`` plus the ensemble's last iteration, whose rows the growing left one level above
    the leaves (see :func:`tree_nodes`) when this worker grew it."""
    t = ens.n_iter - 1
    feature, bins = ens.arrays["feature"][t], ens.arrays["bin"][t]
    nodes = tree_nodes(key, model, feature, bins, codes, ens.depth, memo, remember=False)
    raw = start.copy()
    value = ens.arrays["value"][t]
    for k in range(ens.n_trees_per_iteration):
        raw[:, k] += value[k][nodes[k]]
    return raw
