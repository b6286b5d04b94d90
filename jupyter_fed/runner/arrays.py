"""Decoded arrays kept in a worker between rounds, so round 2 onward neither reads nor converts.

A training session asks for the same columns of the same file every round. Reading the file and
converting its columns to one numpy block costs more than a small model's whole local epoch, so
each worker process keeps the blocks it made, keyed by the file's identity (path, modification
time, size; an object's ETag too) — a file replaced on disk is a new dataset version and misses
the cache — plus the columns and dtype, within a byte budget (least recently used first out).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.packages.base import file_version
from jupyter_fed.runner.data import DataPath, LoadedDataset, TableCache
from jupyter_fed.wire import DatasetInfo

if TYPE_CHECKING:
    from jupyter_fed.runner.aligned import AlignmentScope

Key = tuple[Any, ...]


class ArrayCache:
    """numpy blocks by key, at most ``budget`` bytes in all.

    Parameters
    ----------
    budget
        Bytes of arrays kept; a single block larger than the budget is made but not kept.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._arrays: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Key, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The block for ``key``, made (and kept if it fits) on a miss."""
        with self._lock:
            found = self._arrays.get(key)
            if found is not None:
                self._arrays.move_to_end(key)
                self.hits += 1
                return found
        block = make()
        with self._lock:
            self.misses += 1
            if block.nbytes <= self.budget and key not in self._arrays:
                block.flags.writeable = False  # the kept copy is never handed out itself
                self._arrays[key] = block
                self._bytes += block.nbytes
                while self._bytes > self.budget:
                    _, old = self._arrays.popitem(last=False)
                    self._bytes -= old.nbytes
        return block

    def clear(self) -> None:
        with self._lock:
            self._arrays.clear()
            self._bytes = 0


class CachedDataset(LoadedDataset):
    """A ``LoadedDataset`` whose ``to_numpy`` blocks come from the worker's ``ArrayCache``.

    Steps get a fresh, writable copy each call, as from a plain ``LoadedDataset``: a package that
    normalises its features in place must not change what the next round reads. Copying a block
    costs a small fraction of reading and converting it.
    """

    def __init__(self, info: DatasetInfo, path: DataPath, tables: TableCache,
                 arrays: ArrayCache, alignments: AlignmentScope | None = None,
                 memory_budget: int | None = None, shuffle_buffer_bytes: int | None = None
                 ) -> None:
        super().__init__(info, tables.peek(path), path, tables.get, alignments)
        size, mtime_ns, etag = file_version(path)
        self._identity = (str(path), mtime_ns, size, *([etag] if etag else []))
        self._arrays = arrays
        # ``batches`` keeps rows in memory only as far as the cache would keep them: a larger
        # dataset is streamed, not read whole and thrown away every round.
        self.memory_budget = min(arrays.budget, memory_budget) if memory_budget is not None \
            else arrays.budget
        if shuffle_buffer_bytes is not None:
            self.shuffle_buffer_bytes = shuffle_buffer_bytes

    def to_numpy(self, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray:
        block = self.block(columns, dtype)
        # A block too large to keep comes back writable and is the step's own already.
        return block if block.flags.writeable else np.array(block, copy=True)

    def block(self, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray:
        """The cached block itself (read-only when kept): ``batches`` indexes it, never copies
        it whole."""
        cols = tuple(columns)
        key = (*self._identity, cols, np.dtype(dtype).str)
        return self._arrays.get(key, lambda: super(CachedDataset, self).to_numpy(cols, dtype))

    def aligned(self, prl_session_id: str) -> LoadedDataset:
        """The linked rows (see ``DatasetHandle.aligned``), their decoded columns kept in the
        worker's cache like the whole dataset's, so a vertical session's rounds decode once."""
        from jupyter_fed.runner.aligned import open_aligned

        return open_aligned(self, prl_session_id,
                            lambda key, make: self._arrays.get((*self._identity, *key), make))
