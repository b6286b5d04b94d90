"""Task groups and task builders under the reference SDK's module paths
(``integrate_ai_sdk.taskgroup...`` becomes ``jupyter_fed.taskgroup...``).

The classes are those of :mod:`jupyter_fed.client.taskgroup`.
"""

from __future__ import annotations

from jupyter_fed.client.taskgroup import SessionTaskGroup, TaskBuilder

__all__ = ["SessionTaskGroup", "TaskBuilder"]
