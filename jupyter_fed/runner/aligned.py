"""Aligned handles: a dataset's rows that a record-linkage session linked, in aligned order.

A ``prl`` step leaves each runner, per principal and dataset, the row positions of the
intersection (see :mod:`jupyter_fed.packages.alignment`). ``handle.aligned(prl_session_id)``
turns them into a ``DatasetHandle`` whose row ``i`` is the ``i``-th linked person — the same
person as row ``i`` of the other parties' aligned handles — after checking that the alignment
belongs to the step's principal and that the dataset is still the version that was linked.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.alignment import (
    Alignment,
    DatasetVersion,
    alignment_path,
    load_alignment,
)
from jupyter_fed.runner.data import LoadedDataset

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["AlignedDataset", "AlignmentScope", "open_aligned"]

T = TypeVar("T")

_LOADED: OrderedDict[tuple[Any, ...], Alignment] = OrderedDict()
"""Alignments this worker process read, by file and its (inode, mtime, size): a vertical
session opens the same one at every step, and reading it again costs more than a small step."""


def _load(scope: AlignmentScope, prl_session_id: str, name: str) -> Alignment | None:
    path = alignment_path(scope.cache_dir, scope.principal, prl_session_id, name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    found = _LOADED.get(key)
    if found is None:
        found = load_alignment(scope.cache_dir, scope.principal, prl_session_id, name)
        if found is None:
            return None
        found.rows.flags.writeable = False  # shared by later steps
        _LOADED[key] = found
        while len(_LOADED) > 8:
            _LOADED.popitem(last=False)
    _LOADED.move_to_end(key)
    return found
ArrayCacheFn = Callable[[tuple[Any, ...], Callable[[], np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class AlignmentScope:
    """Whose alignments a handle may open: the runner's cache folder and the step's principal."""

    cache_dir: Path
    principal: str


def open_aligned(handle: LoadedDataset, prl_session_id: str,
                 cache: ArrayCacheFn | None = None) -> AlignedDataset:
    """``handle``'s rows linked by ``prl_session_id``, or ``ConfigError`` naming the dataset."""
    name = handle.info.name
    scope = handle.alignments
    if scope is None:
        raise ConfigError(f"dataset {name!r}: aligned rows are only available to a runner's "
                          "steps", "read aligned rows inside a package step")
    found = _load(scope, prl_session_id, name)
    if found is None:
        raise ConfigError(f"dataset {name!r} has no alignment from record-linkage session "
                          f"{prl_session_id!r} for this user",
                          "run a prl session that links this dataset (with the same user's "
                          "token) and pass its id; a failed linkage leaves no alignment")
    current = DatasetVersion.of(handle.info.registered_at, handle.path, handle.info.num_rows)
    changes = found.version.changes(current)
    if changes:
        raise ConfigError(f"dataset {name!r} changed since record-linkage session "
                          f"{prl_session_id} linked it ({'; '.join(changes)}): its rows may no "
                          "longer be the people that were linked", "run the record linkage again")
    rows = found.rows
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= handle.num_rows):
        raise ConfigError(f"dataset {name!r}: the alignment of session {prl_session_id} points "
                          "outside the dataset", "run the record linkage again")
    return AlignedDataset(handle, found, cache)


class AlignedDataset(LoadedDataset):
    """A ``DatasetHandle`` over ``base``'s rows at ``alignment.rows``, in that order.

    The rows are taken from the base's table (read once, from the runner's table cache), so this
    handle never streams and never reads through Dask: a vertical session's aligned rows are the
    intersection, which fits where the dataset did. ``info.num_rows`` is the intersection's size.
    """

    whole_file = False

    def __init__(self, base: LoadedDataset, alignment: Alignment,
                 cache: ArrayCacheFn | None = None) -> None:
        import pyarrow as pa

        self.alignment = alignment
        self.prl_session_id = alignment.prl_session_id
        self._base = base
        self._cache = cache
        take = pa.array(alignment.rows, type=pa.int64())
        info = base.info.model_copy(update={"num_rows": alignment.size})
        super().__init__(info, None, base.path, lambda _path: base._table.take(take),
                         base.alignments)

    @property
    def num_rows(self) -> int:
        return self.alignment.size

    @property
    def partitioned(self) -> bool:
        return False

    def to_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        # the base table may carry helper columns (a view's file row numbers): never hand them out
        return super().to_pandas(list(columns) if columns else [c.name for c in self.info.columns])

    def to_numpy(self, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray:
        if self._cache is None:
            return super().to_numpy(columns, dtype)
        key = ("aligned", self.prl_session_id, self.alignment.digest, tuple(columns),
               np.dtype(dtype).str)
        block = self._cache(key, lambda: LoadedDataset.to_numpy(self, columns, dtype))
        return block if block.flags.writeable else np.array(block, copy=True)

    def iter_batches(self, columns: Sequence[str], batch_rows: int = 65_536) -> Iterator[np.ndarray]:
        _ = self._table  # slice the taken rows; never stream the whole file
        yield from super().iter_batches(columns, batch_rows)

    def map_arrow(self, columns: Sequence[str], fn: Callable[[pa.Table, int], T],
                  batch_rows: int = 65_536) -> Iterator[T]:
        _ = self._table
        yield from super().map_arrow(columns, fn, batch_rows)

    def aligned(self, prl_session_id: str) -> LoadedDataset:
        raise ConfigError(f"dataset {self.info.name!r} is already aligned by session "
                          f"{self.prl_session_id}", "call aligned() on the registered dataset")
