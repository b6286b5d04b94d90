"""The coordinator's events as a server-sent event stream (``GET /jupyter-fed/api/v1/events``).

Server-sent events rather than a websocket: the stream only flows one way, works through the
same token or cookie authentication as every other route, and a browser's ``EventSource`` or a
plain streaming HTTP client reads it without a protocol library.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado import web
from tornado.iostream import StreamClosedError

from jupyter_fed.server.handlers import FedHandler
from jupyter_fed.server.host import CLOSED
from jupyter_fed.wire.models import json_safe


def format_event(kind: str, data: dict[str, Any]) -> str:
    """One SSE frame: ``event: <kind>`` then the JSON payload on a single ``data:`` line."""
    return f"event: {kind}\ndata: {json.dumps(json_safe(data), allow_nan=False)}\n\n"


class EventsHandler(FedHandler):
    """Streams ``round``, ``status`` and ``log`` events, optionally for one session only.

    The stream opens with a ``ready`` event (the subscription is in place: anything that happens
    from then on is delivered) and sends a comment line every ``JupyterFedApp.event_keepalive``
    seconds so proxies do not close an idle connection. It ends when the client disconnects or the
    server stops.
    """

    _queue: asyncio.Queue[dict[str, Any] | None] | None = None

    @web.authenticated
    async def get(self) -> None:
        only = self.get_query_argument("session", None)
        host = self.host
        if only is not None:
            (await self.coordinator()).session(only)  # 404 now for an unknown session, not silence
        queue = self._queue = await host.subscribe()
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer the stream
        try:
            await self._send(format_event("ready", {"session_id": only}))
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self.fed.event_keepalive)
                except TimeoutError:
                    await self._send(": keepalive\n\n")
                    continue
                if event is CLOSED:
                    break
                if only is None or event.get("session_id") == only:
                    await self._send(format_event(str(event.get("type", "event")), event))
        except StreamClosedError:
            pass
        finally:
            host.unsubscribe(queue)
        if not self.request.connection.stream.closed():  # type: ignore[union-attr]
            self.finish(set_content_type="text/event-stream")

    async def _send(self, frame: str) -> None:
        self.write(frame)
        await self.flush()

    def on_connection_close(self) -> None:
        if self._queue is not None:
            self._queue.put_nowait(CLOSED)
