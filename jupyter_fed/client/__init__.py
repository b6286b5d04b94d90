"""The Python SDK used in the kernel."""

from __future__ import annotations

from jupyter_fed.client.client import Client, connect
from jupyter_fed.client.metrics import SessionMetrics
from jupyter_fed.client.session import Session
from jupyter_fed.client.taskgroup import SessionTaskGroup, TaskBuilder, TaskGroupContext

__all__ = ["Client", "Session", "SessionMetrics", "SessionTaskGroup", "TaskBuilder",
           "TaskGroupContext", "connect"]
