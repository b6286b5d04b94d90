"""Live events of every session (round ends, status changes, log lines, warnings).

The server extension streams them to the browser and the SDK's live views; ``wait`` long-polls
on :attr:`EventHub.changed` instead of sleeping.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["EventHub"]


class EventHub:
    """Fans every event out to subscribers' queues, and wakes whoever waits for a change."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.changed = asyncio.Event()

    def emit(self, event: dict[str, Any]) -> None:
        for q in list(self._subscribers):
            q.put_nowait(event)
        self.changed.set()
        self.changed = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving every event (round ends, status changes, logs) from now on."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(q)
