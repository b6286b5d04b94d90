"""Task builders under the reference SDK's module path.

``integrate_ai`` holds ``IntegrateAiTaskBuilder`` (tasks for a *task runner*: here a connected
runner); ``taskrunner_context`` is importable as the reference's notebooks import it.
"""

from __future__ import annotations

from jupyter_fed.taskgroup.taskbuilder import integrate_ai, taskrunner_context

__all__ = ["integrate_ai", "taskrunner_context"]
