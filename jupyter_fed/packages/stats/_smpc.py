"""Statistics as sums that add up across silos, for ``smpc`` sessions (SymetryML's
``fed_use_smpc``): the coordinator merges them by a secure sum and sees only the total.

The plain merge combines each silo's ``(n, mean, M2)`` by Chan's pairwise update, which needs
every silo's values; a secure sum only adds. So under ``smpc`` each runner sends the raw sums
that add up — ``n``, ``Σx``, ``XᵀX``, per-column counts and, per conditioned block, ``n_b``,
``Σx`` and ``Σx²`` — in one layout the session fixed (the same columns and blocks in the same
order at every runner), and the merged moments are recovered from the total. Withheld values
(NaN: a small group, a suppressed pair) cannot travel through a sum, so they are sent as 0 with
an indicator that is summed too: an entry any silo withheld is withheld in the merge, as in the
plain merge, and nobody learns which silo withheld it.

Raw ``XᵀX`` loses the digits a column's mean shares with its spread (``Σx² - n·mean²``): the
secure merge equals the plain one to the quantisation error on columns of moderate mean, and
loses precision on columns whose mean is many orders above their spread (documented).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jupyter_fed.packages.stats._moments import CondMoments, Moments, Stats

__all__ = ["NAMES", "from_sums", "to_sums"]

NAMES = ("n", "count", "sum", "xtx", "withheld", "cond_n", "cond_sum", "cond_sq",
         "cond_withheld")
"""The tensors of an smpc answer, every one summed securely."""


def to_sums(stats: Stats | None, columns: Sequence[str], conditioned: Sequence[str]
            ) -> dict[str, np.ndarray]:
    """One silo's statistics in the session's layout (``None``: a silo that shares nothing,
    e.g. blocked by its contract, which then adds zeros and vetoes nothing)."""
    p, b = len(columns), len(conditioned)
    out = {"n": np.zeros(1), "count": np.zeros(p), "sum": np.zeros(p), "xtx": np.zeros((p, p)),
           "withheld": np.zeros((p, p)), "cond_n": np.zeros(max(b, 1)),
           "cond_sum": np.zeros((max(b, 1), p)), "cond_sq": np.zeros((max(b, 1), p)),
           "cond_withheld": np.zeros((max(b, 1), p))}
    if stats is None or stats.total.n <= 0:
        return out
    if sorted(stats.columns) != sorted(columns):
        raise ValueError("the statistics do not hold the session's columns")
    idx = [stats.index(c) for c in columns]
    total = stats.total.select(idx)
    n = float(total.n)
    xtx = total.m2 + n * np.outer(total.mean, total.mean)
    out |= {"n": np.array([n]), "count": np.asarray(stats.count, np.float64)[idx],
            "sum": np.nan_to_num(n * total.mean), "xtx": np.nan_to_num(xtx),
            "withheld": np.isnan(xtx).astype(np.float64)}
    for i, col in enumerate(conditioned):
        block = stats.cond.get(col)
        if block is None:  # not sent by this silo (small, near another answer): vetoes it
            out["cond_withheld"][i] = 1.0
            continue
        mean, ss = block.mean[idx], block.ss[idx]
        out["cond_n"][i] = block.n
        out["cond_sum"][i] = np.nan_to_num(block.n * mean)
        out["cond_sq"][i] = np.nan_to_num(ss + block.n * mean * mean)
        out["cond_withheld"][i] = np.isnan(ss + mean).astype(np.float64)
    return out


def from_sums(total: Mapping[str, np.ndarray], columns: Sequence[str],
              conditioned: Sequence[str], binary: Sequence[str]) -> Stats:
    """The merged statistics from the secure total of every silo's :func:`to_sums`."""
    p = len(columns)
    n = float(total["n"][0])
    if n <= 0:
        return Stats(list(columns), Moments.empty(p), np.zeros(p), list(binary))
    mean = np.asarray(total["sum"], np.float64) / n
    m2 = np.asarray(total["xtx"], np.float64) - n * np.outer(mean, mean)
    m2 = np.where(np.asarray(total["withheld"]) > 0.5, np.nan, m2)
    mean = np.where(np.isnan(np.diag(m2)), np.nan, mean)
    cond: dict[str, CondMoments] = {}
    for i, col in enumerate(conditioned):
        withheld = np.asarray(total["cond_withheld"][i]) > 0.5
        nb = float(total["cond_n"][i])
        if withheld.all() or nb <= 0:
            continue
        mb = np.asarray(total["cond_sum"][i], np.float64) / nb
        ss = np.asarray(total["cond_sq"][i], np.float64) - nb * mb * mb
        cond[col] = CondMoments(nb, np.where(withheld, np.nan, mb), np.where(withheld, np.nan, ss))
    count = np.rint(np.asarray(total["count"], np.float64))
    return Stats(list(columns), Moments(n, mean, m2), count, list(binary), cond)
