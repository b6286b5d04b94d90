"""How many bytes of models the coordinator moves at once, across all its sessions.

A step's request normally carries the model up and, in its answer, the client's update down:
one request, sent to every client of the round at once. For a small model that is the fastest
way. For a large one, a hundred clients at once would mean a hundred copies in flight — the
coordinator's memory and its uplink, shared by every session it runs. So a model of at least
``large`` bytes travels in bounded slots: its upload, and later the download of the client's
result, each wait until the bytes already in flight leave room within ``budget`` (one transfer
larger than the budget goes alone). The step itself, between the two, holds no slot: clients
train at the same time whatever the budget.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["DEFAULT_BUDGET", "Transfers"]

MiB = 2**20
DEFAULT_BUDGET = 256 * MiB
LARGE = 4 * MiB


class Transfers:
    """A byte budget for model transfers (see the module doc).

    Parameters
    ----------
    budget
        Bytes of large transfers in flight at once; default ``JUPYTER_FED_TRANSFER_BUDGET_MB``
        from the environment, else 256 MiB.
    large
        Smallest payload that is bounded; default the smaller of 4 MiB and an eighth of the
        budget, so a budget always admits several large transfers.
    """

    def __init__(self, budget: int | None = None, large: int | None = None) -> None:
        if budget is None:
            env = os.environ.get("JUPYTER_FED_TRANSFER_BUDGET_MB")
            budget = int(float(env) * MiB) if env else DEFAULT_BUDGET
        self.budget = max(int(budget), 1)
        self.large = int(large) if large is not None else min(LARGE, max(self.budget // 8, 1))
        self.in_flight = 0
        self.peak = 0
        """Most bytes ever in flight at once (reported by benchmarks and checked by tests)."""
        self._waiters: list[asyncio.Future[None]] = []

    def bounded(self, nbytes: int) -> bool:
        """Whether a payload of ``nbytes`` travels in slots (else in the one-request path)."""
        return nbytes >= self.large

    @asynccontextmanager
    async def slot(self, nbytes: int) -> AsyncIterator[None]:
        """Hold ``nbytes`` of the budget while the body runs."""
        n = min(max(int(nbytes), 1), self.budget)
        while self.in_flight and self.in_flight + n > self.budget:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        self.in_flight += n
        self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:  # released without awaiting: a cancelled transfer frees its bytes at once
            self.in_flight -= n
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
