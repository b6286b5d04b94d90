"""The differencing rule: no two exact answers whose row sets differ by a few rows.

Exact aggregates of two row sets that differ by a few rows describe those rows. Every group of
rows whose exact statistics left a runner (a dataset or view, the rows where a binary column is
1 and 0) is remembered as a packed bitmap of row numbers *in the file* — per file, so every
dataset and view registered on it shares one memory, and across principals, so two colluding
users are no better off than one. A new group that differs by 1..m-1 rows from a remembered
one, or from the difference, intersection or union of two of them (three-query trackers), is
refused. Every package that releases exact aggregates checks here (stats; ffnet's feature
moments). Files live under ``<runner home>/cache/rowsets``: one bit per row per group.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RowSets", "atomic_write", "distance", "file_bits", "popcount"]

_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def popcount(bits: np.ndarray) -> int:
    """Number of rows in a packed bitmap."""
    return int(_POP[bits].sum())


def distance(a: np.ndarray, b: np.ndarray) -> int:
    """Rows in exactly one of two bitmaps (shorter bitmaps are rows appended later: absent)."""
    if len(a) < len(b):
        a, b = b, a
    return popcount(a[:len(b)] ^ b) + popcount(a[len(b):])


def _same_length(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two packed bitmaps padded to one length (rows appended later are absent from the shorter)."""
    n = max(len(a), len(b))
    return np.pad(a, (0, n - len(a))), np.pad(b, (0, n - len(b)))


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def file_bits(handle: Any, bits: np.ndarray) -> np.ndarray:
    """A row set of a view in the file's own row numbering (identity for a whole file)."""
    rows_of = getattr(handle, "file_rows", None)
    if rows_of is None:
        return bits
    view_rows = rows_of()
    kept = np.unpackbits(bits, count=len(view_rows)).astype(bool)
    out = np.zeros(int(getattr(handle, "file_num_rows", 0)) or int(view_rows.max(initial=-1)) + 1,
                   dtype=bool)
    out[view_rows[kept]] = True
    return np.packbits(out)


class RowSets:
    """The row sets of exact answers a runner released, per budget group (file).

    Parameters
    ----------
    root
        The runner's cache folder (``StepContext.cache_dir``); ``None`` (a step run outside a
        runner) keeps them in a temporary folder for the life of the process.
    """

    _fallback: Path | None = None

    def __init__(self, root: Path | None) -> None:
        if root is None:
            if RowSets._fallback is None:
                RowSets._fallback = Path(tempfile.mkdtemp(prefix="jupyter-fed-rowsets-"))
            root = RowSets._fallback
        self.root = Path(root) / "stats"

    def _folder(self, dataset: str) -> Path:
        return self.root / "rowsets" / hashlib.sha256(dataset.encode()).hexdigest()[:24]

    @contextmanager
    def locked(self, dataset: str) -> Iterator[None]:
        """Check-then-remember must not interleave with another step on the same dataset, on
        another thread or in another of the runner's worker processes (a file lock)."""
        import fcntl

        folder = self._folder(dataset)
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(str(folder), threading.Lock())
        folder.mkdir(parents=True, exist_ok=True)
        with lock, open(folder / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _index(self, dataset: str) -> dict[str, int]:
        path = self._folder(dataset) / "index.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def nearest(self, dataset: str, bits: np.ndarray, k: int) -> int | None:
        """The smallest nonzero distance (< ``k``) from ``bits`` to a remembered row set, or to
        the difference, intersection or union of two of them, if any.

        Two remembered answers A and B and a new one C isolate the rows of C Δ (A ∖ B), etc.: with
        A = all 2000 rows, B = ``x0 < 1001`` and C = ``x0 >= 1000``, C is one row away from A ∖ B.
        """
        size, found = popcount(bits), None
        index = self._index(dataset)

        def consider(d: int) -> None:
            nonlocal found
            if 0 < d < k and (found is None or d < found):
                found = d

        loaded: dict[str, np.ndarray] = {}

        def load(digest: str) -> np.ndarray:
            if digest not in loaded:
                loaded[digest] = np.load(self._folder(dataset) / f"{digest}.npy",
                                         allow_pickle=False)
            return loaded[digest]

        for digest, other_size in index.items():
            if abs(other_size - size) < k:  # else the sizes alone put them k rows apart
                consider(distance(bits, load(digest)))
        items = list(index.items())
        for i, (da, na) in enumerate(items):
            for db, nb in items[i + 1:]:
                # size ranges of A∖B, B∖A, A∩B, A∪B: skip the pair when none can come within k
                ranges = [(max(na - nb, 0), na), (max(nb - na, 0), nb), (0, min(na, nb)),
                          (max(na, nb), na + nb)]
                if all(size + k <= lo or size - k >= hi for lo, hi in ranges):
                    continue
                a, b = _same_length(load(da), load(db))
                for derived in (a & ~b, b & ~a, a & b, a | b):
                    consider(distance(bits, derived))
        return found

    def remember(self, dataset: str, row_sets: list[np.ndarray]) -> None:
        index = self._index(dataset)
        folder = self._folder(dataset)
        for bits in row_sets:
            digest = hashlib.sha256(np.trim_zeros(bits, "b").tobytes()).hexdigest()[:32]
            if digest in index:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f"{digest}.npy", "wb") as fh:
                np.save(fh, bits, allow_pickle=False)
            index[digest] = popcount(bits)
        atomic_write(folder / "index.json", json.dumps(index).encode())
