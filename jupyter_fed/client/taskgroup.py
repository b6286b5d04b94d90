"""Joining silos to a session, in the reference SDK's task-group vocabulary.

``SessionTaskGroup(session).add_task(builder.hfl(...)).start()`` joins one client per task; the
session starts its rounds once ``min_num_clients`` have joined.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_fed.client.client import Client
    from jupyter_fed.client.session import Session


class TaskBuilder:
    """Builds task descriptions for one runner (or for whichever runner holds the dataset)."""

    def __init__(self, client: Client | None = None, runner: str | None = None,
                 task_runner_id: str | None = None) -> None:
        self.client = client
        self.runner = runner or task_runner_id

    def hfl(self, train_dataset_name: str, test_dataset_name: str | None = None, *,
            runner: str | None = None, client_name: str | None = None) -> dict[str, Any]:
        """A horizontal-FL client: train on one dataset, evaluate on another of the same runner."""
        return {"runner": runner or self.runner, "client_name": client_name,
                "datasets": {"train": train_dataset_name, "test": test_dataset_name}}


    def prl(self, train_dataset_name: str, test_dataset_name: str | None = None,
            client_name: str | None = None, *, runner: str | None = None) -> dict[str, Any]:
        """A record-linkage party: its training (and test) dataset, linked separately, under the
        client name the session's ``data_config`` uses (and later vertical sessions will)."""
        if not client_name:
            from jupyter_fed.errors import ConfigError

            raise ConfigError("prl tasks need a client_name",
                              "use one of the client names of the session's data_config")
        return {"runner": runner or self.runner, "client_name": client_name,
                "datasets": {"train": train_dataset_name, "test": test_dataset_name}}

    def vfl_train(self, train_dataset_name: str, test_dataset_name: str | None = None,
                  batch_size: int = 1024, client_name: str | None = None,
                  storage_path: str | None = None, *, runner: str | None = None
                  ) -> dict[str, Any]:
        """A party of a vertical (SplitNN) training session: the datasets a ``prl`` session
        linked, under the client name of that linkage and of the session's ``data_config``.

        ``batch_size`` must be the same at every party. ``storage_path`` is accepted for the
        reference SDK's sake; each party keeps its network at its runner (see ``splitnn``).
        """
        return self._vfl(client_name, runner, {"train": train_dataset_name,
                                               "test": test_dataset_name},
                         {"batch_size": batch_size, "storage_path": storage_path})

    def vfl_predict(self, dataset_name: str, batch_size: int = 1024,
                    client_name: str | None = None, storage_path: str | None = None,
                    raw_output: bool = False, *, runner: str | None = None) -> dict[str, Any]:
        """A party of a vertical prediction session: one dataset the ``prl`` session linked.

        The label party writes the predictions to ``storage_path`` (``.csv`` or ``.parquet``,
        under its runner's data roots), with its own ids, in the linkage's row order;
        ``raw_output`` writes each class's probability instead of the predicted class.
        """
        return self._vfl(client_name, runner, {"train": dataset_name},
                         {"batch_size": batch_size, "storage_path": storage_path,
                          "raw_output": raw_output})

    def _vfl(self, client_name: str | None, runner: str | None, datasets: dict[str, Any],
             options: dict[str, Any]) -> dict[str, Any]:
        if not client_name:
            from jupyter_fed.errors import ConfigError

            raise ConfigError("vfl tasks need a client_name",
                              "use one of the client names of the session's data_config")
        return {"runner": runner or self.runner, "client_name": client_name,
                "datasets": datasets,
                "options": {k: v for k, v in options.items() if v is not None}}

    def eda(self, dataset_name: str, *, runner: str | None = None,
            client_name: str | None = None) -> dict[str, Any]:
        """An analytics client (EDA, statistics): one dataset, one compute step."""
        return {"runner": runner or self.runner, "client_name": client_name,
                "datasets": {"data": dataset_name}}

    stats = analytics = eda


class TaskContext:
    """One joined client, as seen from the kernel."""

    def __init__(self, session: Session, client_id: str) -> None:
        self.session, self.client_id = session, client_id

    def status(self) -> dict[str, Any]:
        """The client's state, current round, step progress and last error."""
        info = self.session.info()
        for c in info["clients"]:
            if c["client_id"] == self.client_id:
                return {"client_id": c["client_id"], "runner": c["runner"],
                        "datasets": c["datasets"], "status": c["status"],
                        "round": c.get("round"), "step": c.get("step"),
                        "progress": c.get("progress"), "error": c["error"],
                        "session_status": info["status"]}
        return {"client_id": self.client_id, "status": "unknown"}


class TaskGroupContext:
    """What ``SessionTaskGroup.start()`` returns: per-client contexts, waiting and log following."""

    def __init__(self, session: Session, client_ids: list[str]) -> None:
        self.session = session
        self.contexts = {cid: TaskContext(session, cid) for cid in client_ids}

    def wait(self, timeout: float = 300, poll: float = 1.0) -> bool:
        """``True`` once the session completed; ``False`` on timeout; raises if it failed."""
        return self.session.wait(timeout, poll)

    def monitor_task_logs(self, follow: bool = True, poll: float = 0.5, timeout: float | None = None,
                          file: Any = None) -> None:
        """Print the session log; with ``follow``, keep printing until the session ends."""
        last, deadline = 0, None if timeout is None else time.monotonic() + timeout
        while True:
            for row in self.session.logs(after=last):
                last = row["id"]
                who = f" [{row['client']}]" if row["client"] else ""
                print(f"{row['at'][11:19]} {row['level']:<7}{who} {row['message']}", file=file)
            done = self.session.status() in ("completed", "failed", "cancelled", "interrupted")
            if not follow or done or (deadline is not None and time.monotonic() > deadline):
                if done and follow:
                    for row in self.session.logs(after=last):
                        print(f"{row['at'][11:19]} {row['level']:<7} {row['message']}", file=file)
                return
            time.sleep(poll)


class SessionTaskGroup:
    """Collects tasks for a session and joins them all at once on ``start()``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.tasks: list[dict[str, Any]] = []

    def add_task(self, task: dict[str, Any]) -> SessionTaskGroup:
        self.tasks.append(task)
        return self

    def start(self) -> TaskGroupContext:
        if self.session.status() == "created":
            self.session.start()
        clients = self.session._backend.join(self.session.id, self.tasks)
        return TaskGroupContext(self.session, [c["client_id"] for c in clients])
