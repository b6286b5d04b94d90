"""Limits on what one client of the coordinator can make it do: join attempts.

Opening an invitation runs scrypt (about 0.1 s of a core and 32 MiB, by design: that is what
makes guessing its password slow). Thirty wrong-password joins at once used to run thirty of
them on the Jupyter server's event loop and stalled every other request for 1.7 s. Now each runs
on a thread, one at a time, and each client (its address) may try only so many within a
window — a password is not guessed by someone who gets ten tries a minute.
"""

from __future__ import annotations

import math
import time
from collections import deque

from jupyter_fed.errors import RateLimited


class AttemptLimiter:
    """At most ``attempts`` per ``window`` seconds for each client key (sliding window).

    Parameters
    ----------
    attempts
        Attempts allowed within any ``window`` seconds.
    window
        Length of the window in seconds.
    max_clients
        Keys remembered at most; the oldest are forgotten first (bounds the memory an attacker
        varying its key can take).
    """

    def __init__(self, attempts: int = 10, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.attempts, self.window, self.max_clients = attempts, window, max_clients
        self._seen: dict[str, deque[float]] = {}

    def check(self, client: str, what: str = "attempts") -> None:
        """Count one attempt by ``client``, or raise ``RateLimited`` (429) if it has had its share."""
        now = time.monotonic()
        times = self._seen.pop(client, None) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        self._seen[client] = times  # re-inserted: most recently active last
        if len(times) >= self.attempts:
            wait = math.ceil(times[0] + self.window - now)
            raise RateLimited(f"too many {what} from this client ({self.attempts} per "
                              f"{self.window:g} s)", f"wait {wait} s and try again")
        times.append(now)
        while len(self._seen) > self.max_clients:
            del self._seen[next(iter(self._seen))]
