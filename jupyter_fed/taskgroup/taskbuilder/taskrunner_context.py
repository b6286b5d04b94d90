"""Present so that the reference SDK's ``from ...taskgroup.taskbuilder import taskrunner_context``
imports. Task runners need no context object here: they are the runners the coordinator is
connected to, addressed by name (``IntegrateAiTaskBuilder(client, task_runner_id=NAME)``).
"""

from __future__ import annotations

__all__: list[str] = []
