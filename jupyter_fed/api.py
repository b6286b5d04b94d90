"""``from jupyter_fed.api import connect``: the reference SDK's ``integrate_ai_sdk.api`` path.

The reference's notebooks import ``connect`` from ``integrate_ai_sdk.api``; replacing the package
name is all they need. See :func:`jupyter_fed.client.connect`.
"""

from __future__ import annotations

from jupyter_fed.client import Client, Session, SessionMetrics, connect

__all__ = ["Client", "Session", "SessionMetrics", "connect"]
