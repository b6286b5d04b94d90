"""The coordinator's half of keyed-hash linkage: intersect opaque tokens, align, and nothing else.

It receives from each party a sorted array of distinct 16-byte tokens (and, with fuzzy linkage,
Bloom filters) and returns, per party, the positions *in what that party sent* of the
intersection's members, in one order shared by all: ascending token. Positions index the party's
sorted tokens, not its rows, so neither they nor the order say anything about the rows; only the
party maps them back to rows. Pure numpy: no keys, ids or rows are ever here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jupyter_fed.errors import SessionFailed
from jupyter_fed.packages.prl._bloom import dice
from jupyter_fed.packages.prl._crypto import TOKEN_BYTES

__all__ = ["check_tokens", "fuzzy_match", "intersect"]


def _keys(tokens: np.ndarray) -> np.ndarray:
    """Tokens as fixed-width byte strings: numpy compares and sorts them like ``memcmp``."""
    return np.ascontiguousarray(tokens).view(f"S{TOKEN_BYTES}").ravel()


def check_tokens(tokens: np.ndarray | None, client: str, what: str, *, distinct: bool = True
                 ) -> np.ndarray:
    """A party's tokens: (m, 16) uint8, sorted (and distinct unless ``distinct`` is off)."""
    if tokens is None or tokens.dtype != np.uint8 or tokens.ndim != 2 or \
            tokens.shape[1] != TOKEN_BYTES:
        raise SessionFailed(f"client {client} sent malformed {what} tokens",
                            "check the client's runner version")
    keys = _keys(tokens)
    ordered = keys[1:] > keys[:-1] if distinct else keys[1:] >= keys[:-1]
    if len(keys) > 1 and not bool(ordered.all()):
        raise SessionFailed(f"client {client} sent {what} tokens that are not sorted and "
                            "distinct", "check the client's runner version")
    return tokens


def intersect(parties: Sequence[np.ndarray]) -> list[np.ndarray]:
    """For each party, the positions of the common tokens in its array, in ascending-token order."""
    keys = [_keys(p) for p in parties]
    common = keys[0]
    positions = [np.arange(len(common), dtype=np.int64)]
    for other in keys[1:]:
        common, here, there = np.intersect1d(common, other, assume_unique=True,
                                             return_indices=True)
        positions = [p[here] for p in positions] + [there.astype(np.int64)]
    return positions


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct keys, start, count) of runs of equal keys in a sorted array."""
    if len(keys) == 0:
        return keys, np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]).astype(np.int64)
    counts = np.diff(np.r_[starts, len(keys)])
    return keys[starts], starts, counts


def fuzzy_match(blocks: Sequence[np.ndarray], blooms: Sequence[np.ndarray], threshold: float,
                max_pairs: int) -> list[np.ndarray]:
    """Two parties' records linked one to one: same block token, Dice ≥ ``threshold``, best
    pairs first (ties: by position). Returns each party's positions, ordered by the first's."""
    (ka, sa, na), (kb, sb, nb) = _groups(_keys(blocks[0])), _groups(_keys(blocks[1]))
    _, ga, gb = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    a_start, a_n, b_start, b_n = sa[ga], na[ga], sb[gb], nb[gb]
    sizes = a_n * b_n
    total = int(sizes.sum())
    if total > max_pairs:
        raise SessionFailed(f"fuzzy linkage would compare {total:,} pairs of records, more than "
                            f"fuzzy.max_pairs ({max_pairs:,})",
                            "add an exact id column that both parties share (records are "
                            "compared only within equal values of the id_columns)")
    group = np.repeat(np.arange(len(sizes)), sizes)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ia = a_start[group] + offset // b_n[group]
    ib = b_start[group] + offset % b_n[group]
    score = dice(blooms[0], blooms[1], ia, ib)
    good = score >= threshold
    ia, ib, score = ia[good], ib[good], score[good]
    order = np.lexsort((ib, ia, -score))
    used_a, used_b = set(), set()
    pairs = []
    for k in order.tolist():
        x, y = int(ia[k]), int(ib[k])
        if x not in used_a and y not in used_b:
            used_a.add(x)
            used_b.add(y)
            pairs.append((x, y))
    pairs.sort()
    if not pairs:
        return [np.zeros(0, np.int64), np.zeros(0, np.int64)]
    both = np.asarray(pairs, dtype=np.int64)
    return [both[:, 0], both[:, 1]]
