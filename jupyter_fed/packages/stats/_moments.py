"""Mergeable sufficient statistics: count, means and centred cross-products, merged exactly.

The information is that of SymetryML's PSR — the count ``n``, the column sums ``Xᵀ1`` and the
cross-product matrix ``XᵀX`` — but it is kept as ``(n, mean, M2)`` with ``M2 = Σ (x - mean)(x -
mean)ᵀ`` and merged with Chan, Golub & LeVeque's pairwise update. Raw ``XᵀX`` loses every digit
of a variance when a column's mean is large next to its spread (timestamps, incomes, sensor
offsets): ``Σx² - n·mean²`` cancels catastrophically. The centred form does not, and the raw sums
are recovered exactly when wanted (:attr:`Moments.sums`, :attr:`Moments.xtx`).

A NaN in ``mean[j]`` marks column ``j`` as withheld (suppressed at the silo, or absent there); the
merge formulas carry NaN into exactly the entries that depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np

__all__ = ["BitWriter", "Moments", "Stats", "merge_all"]


@dataclass
class Moments:
    """Count, column means and centred cross-product matrix of one block of rows."""

    n: float
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, p: int) -> Moments:
        return cls(0.0, np.zeros(p), np.zeros((p, p)))

    @classmethod
    def of(cls, rows: np.ndarray) -> Moments:
        """The moments of a (rows × columns) float64 block, in two passes for accuracy."""
        if len(rows) == 0:
            return cls.empty(rows.shape[1])
        mean = rows.mean(axis=0)  # numpy sums pairwise: error grows with log(n), not n
        centred = rows - mean
        return cls(float(len(rows)), mean, centred.T @ centred)

    def merge(self, other: Moments) -> Moments:
        """The moments of both blocks' rows together (exact up to rounding, order-independent)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, m2)

    def minus(self, part: Moments) -> Moments:
        """The moments of this block's rows that are not in ``part`` (the complement)."""
        rest = self.n - part.n
        if rest <= 0:
            return Moments.empty(len(self.mean))
        if part.n == 0:
            return self
        mean = (self.n * self.mean - part.n * part.mean) / rest
        delta = part.mean - mean
        return Moments(rest, mean, self.m2 - part.m2 - np.outer(delta, delta) * (part.n * rest / self.n))

    def select(self, index: Sequence[int]) -> Moments:
        idx = np.asarray(index, dtype=int)
        return Moments(self.n, self.mean[idx], self.m2[np.ix_(idx, idx)])

    def embed(self, index: Sequence[int], p: int) -> Moments:
        """These moments placed at ``index`` among ``p`` columns; the others are NaN (absent)."""
        idx = np.asarray(index, dtype=int)
        mean, m2 = np.full(p, np.nan), np.full((p, p), np.nan)
        mean[idx] = self.mean
        m2[np.ix_(idx, idx)] = self.m2
        return Moments(self.n, mean, m2)

    @property
    def sums(self) -> np.ndarray:
        """Column sums ``Xᵀ1``."""
        return self.n * self.mean

    @property
    def xtx(self) -> np.ndarray:
        """The raw cross-product matrix ``XᵀX``."""
        return self.m2 + self.n * np.outer(self.mean, self.mean)


@dataclass
class Stats:
    """One set of statistics: the selected rows, and the same conditioned on binary columns.

    Attributes
    ----------
    columns
        Column names, the order of every array.
    total
        Moments of all selected rows.
    count
        Rows in which each column was seen (``n`` at one silo; after a merge, the rows of the
        silos that have the column).
    binary
        Columns whose values are all 0 or 1.
    cond
        Binary column → moments of the rows where it is 1 (the rows where it is 0 follow by
        :meth:`Moments.minus`).
    """

    columns: list[str]
    total: Moments
    count: np.ndarray
    binary: list[str] = field(default_factory=list)
    cond: dict[str, Moments] = field(default_factory=dict)

    def index(self, column: str) -> int:
        try:
            return self.columns.index(column)
        except ValueError:
            raise KeyError(f"column {column!r}") from None

    def to_tensors(self, prefix: str = "") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Named arrays for the wire (safetensors) and the JSON that says what they are."""
        p, names = len(self.columns), list(self.cond)
        arrays = {"n": np.array(self.total.n), "count": self.count, "mean": self.total.mean,
                  "m2": self.total.m2}
        if names:
            arrays |= {"cond_n": np.array([self.cond[b].n for b in names]),
                       "cond_mean": np.stack([self.cond[b].mean for b in names]).reshape(-1, p),
                       "cond_m2": np.stack([self.cond[b].m2 for b in names]).reshape(-1, p, p)}
        meta = {"columns": self.columns, "binary": self.binary, "conditioned": names}
        return {prefix + k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}, meta

    @classmethod
    def from_tensors(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str = ""
                     ) -> Stats:
        """Rebuild from :meth:`to_tensors`; shapes are checked so a malformed answer fails here."""
        columns = [str(c) for c in meta["columns"]]
        p = len(columns)
        mean, m2 = arrays[prefix + "mean"].reshape(-1), arrays[prefix + "m2"]
        count = arrays[prefix + "count"].reshape(-1)
        if mean.shape != (p,) or m2.shape != (p, p) or count.shape != (p,):
            raise ValueError(f"statistics for {p} columns have shapes {mean.shape}, {m2.shape}")
        total = Moments(float(arrays[prefix + "n"].reshape(-1)[0]), mean, m2)
        names = [str(b) for b in meta.get("conditioned", [])]
        cond = {}
        if names:
            cn, cm, c2 = (arrays[prefix + k] for k in ("cond_n", "cond_mean", "cond_m2"))
            if cn.shape != (len(names),) or cm.shape != (len(names), p) or \
                    c2.shape != (len(names), p, p):
                raise ValueError("conditioned statistics have the wrong shapes")
            cond = {b: Moments(float(cn[i]), cm[i], c2[i]) for i, b in enumerate(names)}
        return cls(columns, total, count, [str(b) for b in meta.get("binary", [])], cond)


def merge_all(parts: Iterable[Stats]) -> Stats:
    """Merge several silos' statistics over the union of their columns.

    A column some silo lacks (or withheld) is NaN in every merged moment it enters: merged values
    are those of the pooled rows, or not defined. A conditioned block is merged when every silo
    sent one for that column.
    """
    parts = list(parts)
    columns = list(dict.fromkeys(c for s in parts for c in s.columns))
    p = len(columns)
    if not parts:
        return Stats([], Moments.empty(0), np.zeros(0))
    placed = [[columns.index(c) for c in s.columns] for s in parts]
    total = reduce(Moments.merge, (s.total.embed(i, p) for s, i in zip(parts, placed, strict=True)))
    count = np.zeros(p)
    for s, i in zip(parts, placed, strict=True):
        count[i] += s.count
    binary = [c for c in columns if all(c in s.binary for s in parts)]
    cond = {b: reduce(Moments.merge, (s.cond[b].embed(i, p) for s, i in zip(parts, placed, strict=True)))
            for b in columns if all(b in s.cond for s in parts)}
    return Stats(columns, total, count, binary, cond)


class BitWriter:
    """Packs a stream of boolean blocks of any length into one bitmap (8 rows a byte)."""

    def __init__(self) -> None:
        self._packed: list[np.ndarray] = []
        self._carry = np.zeros(0, dtype=bool)
        self.nbits = 0

    def add(self, bits: np.ndarray) -> None:
        bits = np.asarray(bits, dtype=bool)
        self.nbits += len(bits)
        bits = np.concatenate([self._carry, bits])
        whole = len(bits) - len(bits) % 8
        self._packed.append(np.packbits(bits[:whole]))
        self._carry = bits[whole:]

    def finish(self) -> np.ndarray:
        """The packed bitmap of every row added (``np.unpackbits(.., count=nbits)`` unpacks it)."""
        parts = self._packed + ([np.packbits(self._carry)] if len(self._carry) else [])
        return np.concatenate(parts) if parts else np.zeros(0, np.uint8)
