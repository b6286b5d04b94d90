"""Mergeable sufficient statistics: count, means and centred cross-products, merged exactly.

The information is that of SymetryML's PSR — the count ``n``, the column sums ``Xᵀ1`` and the
cross-product matrix ``XᵀX`` — but it is kept as ``(n, mean, M2)`` with ``M2 = Σ (x - mean)(x -
mean)ᵀ`` and merged with Chan, Golub & LeVeque's pairwise update. Raw ``XᵀX`` loses every digit
of a variance when a column's mean is large next to its spread (timestamps, incomes, sensor
offsets): ``Σx² - n·mean²`` cancels catastrophically. The centred form does not, and the raw sums
are recovered exactly when wanted (:attr:`Moments.sums`, :attr:`Moments.xtx`).

Conditioned blocks (:class:`CondMoments`) keep only the diagonal, so memory is ``O(p²)`` for
the total and ``O(b·p)`` for ``b`` binary columns — quadratic in the number of columns at most.

A NaN in ``mean[j]`` marks column ``j`` as withheld (suppressed at the silo, or absent there); the
merge formulas carry NaN into exactly the entries that depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np

__all__ = ["BitWriter", "CondMoments", "Moments", "Stats", "merge_all"]


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

    @property
    def ss(self) -> np.ndarray:
        """Centred sum of squares of each column (the diagonal of ``m2``)."""
        return np.diag(self.m2).copy()


@dataclass
class CondMoments:
    """Count, means and centred sums of squares of the rows where one binary column is 1.

    Only the diagonal: every conditional function of the reference (``COND_MEAN``,
    ``COND_VARIANCE``, ``PCT_OF_TRUE``, …) is univariate within the block, and keeping the full
    ``p × p`` matrix for each of ``b`` binary columns made memory grow with ``b·p²`` (600 binary
    columns: +1.7 GB). This is ``O(b·p)``.
    """

    n: float
    mean: np.ndarray
    ss: np.ndarray

    @classmethod
    def empty(cls, p: int) -> CondMoments:
        return cls(0.0, np.zeros(p), np.zeros(p))

    def merge(self, other: CondMoments) -> CondMoments:
        """Chan et al.'s pairwise update, on the diagonal."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return CondMoments(n, self.mean + delta * (other.n / n),
                           self.ss + other.ss + delta * delta * (self.n * other.n / n))

    def complement(self, total: Moments) -> CondMoments:
        """The same statistics of ``total``'s rows that are not in this block."""
        rest = total.n - self.n
        if rest <= 0:
            return CondMoments.empty(len(total.mean))
        if self.n == 0:
            return CondMoments(total.n, total.mean.copy(), total.ss)
        mean = (total.n * total.mean - self.n * self.mean) / rest
        delta = self.mean - mean
        return CondMoments(rest, mean, total.ss - self.ss - delta * delta * (self.n * rest / total.n))

    def embed(self, index: Sequence[int], p: int) -> CondMoments:
        idx = np.asarray(index, dtype=int)
        mean, ss = np.full(p, np.nan), np.full(p, np.nan)
        mean[idx], ss[idx] = self.mean, self.ss
        return CondMoments(self.n, mean, ss)

    def copy(self) -> CondMoments:
        return CondMoments(self.n, self.mean.copy(), self.ss.copy())


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
        Columns whose values are all 0 or 1 (by the registered schema, agreed across runners).
    cond
        Binary column → statistics of the rows where it is 1 (the rows where it is 0 follow by
        :meth:`CondMoments.complement`).
    private
        ``None`` for exact statistics; for a differentially private answer (a row filter), what
        it cost (``{"epsilon": …, "delta": …}``).
    """

    columns: list[str]
    total: Moments
    count: np.ndarray
    binary: list[str] = field(default_factory=list)
    cond: dict[str, CondMoments] = field(default_factory=dict)
    private: dict[str, float] | None = None

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
                       "cond_ss": np.stack([self.cond[b].ss for b in names]).reshape(-1, p)}
        meta: dict[str, Any] = {"columns": self.columns, "binary": self.binary,
                                "conditioned": names}
        if self.private is not None:
            meta["private"] = dict(self.private)
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
            cn, cm, c2 = (arrays[prefix + k] for k in ("cond_n", "cond_mean", "cond_ss"))
            if cn.shape != (len(names),) or cm.shape != (len(names), p) or \
                    c2.shape != (len(names), p):
                raise ValueError("conditioned statistics have the wrong shapes")
            cond = {b: CondMoments(float(cn[i]), cm[i], c2[i]) for i, b in enumerate(names)}
        private = meta.get("private")
        return cls(columns, total, count, [str(b) for b in meta.get("binary", [])], cond,
                   dict(private) if private else None)


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
    cond = {b: reduce(CondMoments.merge, (s.cond[b].embed(i, p)
                                          for s, i in zip(parts, placed, strict=True)))
            for b in columns if all(b in s.cond for s in parts)}
    private = None
    if any(s.private for s in parts):  # each silo spent its own budget; the worst is what holds
        private = {k: max(float((s.private or {}).get(k, 0.0)) for s in parts)
                   for k in ("epsilon", "delta")}
    return Stats(columns, total, count, binary, cond, private)


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
