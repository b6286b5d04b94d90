"""``IntegrateAiTaskBuilder(client=client, task_runner_id=NAME)``, as the reference SDK writes it.

A reference *task runner* is a runner here: ``task_runner_id`` is the name the runner was
connected under (``client.runners()``). The builder is :class:`jupyter_fed.client.TaskBuilder`;
its tasks take registered dataset names or their paths (``hfl(train_path=..., test_path=...)``,
``eda(dataset_name=..., dataset_path=...)``), a path being resolved at the runner to the
registered dataset there and never read otherwise.
"""

from __future__ import annotations

from jupyter_fed.client.taskgroup import TaskBuilder

__all__ = ["IntegrateAiTaskBuilder"]

IntegrateAiTaskBuilder = TaskBuilder
