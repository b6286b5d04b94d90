"""Which aligned rows each batch holds: the same at every party, from the seed the plan sends.

Row ``i`` of every party's aligned handle is the same person, so the parties need to agree only on
an order: epoch ``r`` visits the rows in ``permutation(n)`` drawn from ``(seed, r)``, in batches of
``batch_size``; an *exchange* carries ``exchange_batches`` consecutive batches. Pure numpy, so the
plan (which never sees a row) and the runners compute the same numbers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["chunk_batches", "num_batches", "num_chunks"]


def num_batches(n: int, batch_size: int) -> int:
    return max(1, -(-int(n) // int(batch_size)))


def num_chunks(n: int, batch_size: int, per_chunk: int) -> int:
    """Exchanges one epoch takes."""
    return -(-num_batches(n, batch_size) // int(per_chunk))


def chunk_batches(seed: int, round: int, chunk: int, n: int, batch_size: int, per_chunk: int
                  ) -> list[np.ndarray]:
    """The row positions of each batch of exchange ``chunk`` of epoch ``round``."""
    order = _order(int(seed), int(round), int(n))
    first = int(chunk) * int(per_chunk)
    last = min(first + int(per_chunk), num_batches(n, batch_size))
    return [order[b * batch_size:(b + 1) * batch_size].copy() for b in range(first, last)]


@lru_cache(maxsize=8)
def _order(seed: int, round: int, n: int) -> np.ndarray:
    """Epoch ``round``'s order of the ``n`` rows. Kept: every exchange of the epoch asks again,
    and drawing a permutation of a large linkage costs about a millisecond each time."""
    order = np.random.default_rng([seed % 2**63, round]).permutation(n)
    order.flags.writeable = False  # shared by every later call: callers get copies
    return order
