"""``from jupyter_fed.taskgroup.base import SessionTaskGroup``, as the reference SDK writes it."""

from __future__ import annotations

from jupyter_fed.client.taskgroup import SessionTaskGroup, TaskGroupContext

__all__ = ["SessionTaskGroup", "TaskGroupContext"]
