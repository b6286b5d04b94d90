"""Fair queueing of steps between principals.

One first-in-first-out queue per principal, served round-robin, and a cap on the steps one
principal runs at once (``max_steps_per_principal``, default ``max_workers - 1``). Without the
cap, two 1000-epoch steps from one user occupied both workers and another user's short step
waited for them (over 30 s in the red-team run); with it a worker is always left for somebody
else, and the round-robin gives each waiting principal its turn. Steps cannot be pre-empted, so
the bound on another user's wait is "until a worker is free or started", not zero.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Generic, Protocol, TypeVar

from jupyter_fed.errors import RateLimited


class _Queued(Protocol):
    key: str
    principal: str


J = TypeVar("J", bound=_Queued)


class FairQueue(Generic[J]):
    """Per-principal queues served in turn, each principal capped in steps running at once.

    Parameters
    ----------
    max_running
        Steps one principal may run at once.
    max_queued
        Steps one principal may have waiting; ``push`` beyond it raises ``RateLimited`` (429).
    """

    def __init__(self, max_running: int, max_queued: int) -> None:
        self.max_running, self.max_queued = max_running, max_queued
        self._queues: OrderedDict[str, deque[J]] = OrderedDict()  # principals with waiting jobs
        self._running: dict[str, int] = {}

    def check_room(self, principal: str) -> None:
        """Refuse before any work (or budget) is spent on a step that could not be queued."""
        if len(self._queues.get(principal, ())) >= self.max_queued:
            raise RateLimited(f"{self.max_queued} of your steps are already waiting on this "
                              "runner", "wait for some to finish, or cancel them")

    def push(self, job: J) -> None:
        self.check_room(job.principal)
        self._queues.setdefault(job.principal, deque()).append(job)

    def remove(self, key: str) -> J | None:
        """Take a waiting job out (it was cancelled); ``None`` if it is not waiting."""
        for principal, q in self._queues.items():
            for job in q:
                if job.key == key:
                    q.remove(job)
                    if not q:
                        del self._queues[principal]
                    return job
        return None

    def pop(self) -> J | None:
        """The next job to run: the first principal in turn that is under its running cap."""
        for principal in list(self._queues):
            if self._running.get(principal, 0) >= self.max_running:
                continue
            q = self._queues.pop(principal)  # served: goes to the back of the turn order
            job = q.popleft()
            if q:
                self._queues[principal] = q
            self._running[principal] = self._running.get(principal, 0) + 1
            return job
        return None

    def finished(self, principal: str) -> None:
        """A job popped for ``principal`` ended (or never started): free its running place."""
        left = self._running.get(principal, 0) - 1
        if left > 0:
            self._running[principal] = left
        else:
            self._running.pop(principal, None)

    def runnable(self) -> bool:
        """Whether ``pop`` would return a job."""
        return any(self._running.get(p, 0) < self.max_running for p in self._queues)

    def waiting(self, principal: str | None = None) -> int:
        if principal is not None:
            return len(self._queues.get(principal, ()))
        return sum(len(q) for q in self._queues.values())
