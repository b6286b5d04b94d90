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
    """Builds task descriptions for one runner (or for whichever runner holds the dataset).

    Parameters
    ----------
    client
        The connected client; needed to resolve data given by path (``train_path=...``) as the
        task is built. Without one, paths are resolved when the task group starts.
    runner, task_runner_id
        The runner the tasks run at (the reference SDK's *task runner*: here a connected runner's
        name). ``None``: the runner that holds the dataset (names must then be unique).

    Every builder takes the data by registered name or, as the reference SDK's notebooks do, by
    path (``train_path``, ``test_path``, ``dataset_path``). A path is looked up at the runner
    among the datasets this connection may see; it is refused, with the names it may use, when
    no registered dataset lies there. Nothing is ever read from an unregistered path.
    """

    def __init__(self, client: Client | None = None, runner: str | None = None,
                 task_runner_id: str | None = None) -> None:
        self.client = client
        self.runner = runner or task_runner_id

    def _task(self, runner: str | None, client_name: str | None,
              datasets: dict[str, str | None], paths: dict[str, tuple[str, str | None]],
              required: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        given = {role: [field, str(path)] for role, (field, path) in paths.items()
                 if path is not None}
        if datasets.get(required) is None and required not in given:
            from jupyter_fed.errors import ConfigError

            field = paths[required][0] if required in paths else required
            raise ConfigError(f"the task names no {required} dataset",
                              f"give its registered name or its path ({field}=...)",
                              details=[{"field": field, "error": "required"}])
        task: dict[str, Any] = {"runner": runner or self.runner, "client_name": client_name,
                                "datasets": datasets}
        if options is not None:
            task["options"] = {k: v for k, v in options.items() if v is not None}
        if given:
            task["paths"] = given
            if self.client is not None:
                from jupyter_fed.client.paths import resolve_task

                task = resolve_task(self.client, task)
        return task

    def hfl(self, train_dataset_name: str | None = None, test_dataset_name: str | None = None, *,
            train_path: str | None = None, test_path: str | None = None,
            runner: str | None = None, client_name: str | None = None,
            use_gpu: bool = False) -> dict[str, Any]:
        """A horizontal-FL client: train on one dataset, evaluate on another of the same runner.

        ``train_path``/``test_path`` name registered datasets by their paths at the runner.
        ``use_gpu`` is accepted for the reference SDK's sake: the runner picks its device.
        """
        return self._task(runner, client_name,
                          {"train": train_dataset_name, "test": test_dataset_name},
                          {"train": ("train_path", train_path), "test": ("test_path", test_path)},
                          "train")

    def prl(self, train_dataset_name: str | None = None, test_dataset_name: str | None = None,
            client_name: str | None = None, *, train_path: str | None = None,
            test_path: str | None = None, runner: str | None = None) -> dict[str, Any]:
        """A record-linkage party: its training (and test) dataset, linked separately, under the
        client name the session's ``data_config`` uses (and later vertical sessions will)."""
        if not client_name:
            from jupyter_fed.errors import ConfigError

            raise ConfigError("prl tasks need a client_name",
                              "use one of the client names of the session's data_config")
        return self._task(runner, client_name,
                          {"train": train_dataset_name, "test": test_dataset_name},
                          {"train": ("train_path", train_path), "test": ("test_path", test_path)},
                          "train")

    def vfl_train(self, train_dataset_name: str | None = None,
                  test_dataset_name: str | None = None, batch_size: int = 1024,
                  client_name: str | None = None, storage_path: str | None = None, *,
                  train_path: str | None = None, test_path: str | None = None,
                  runner: str | None = None) -> dict[str, Any]:
        """A party of a vertical (SplitNN) training session: the datasets a ``prl`` session
        linked, under the client name of that linkage and of the session's ``data_config``.

        ``batch_size`` must be the same at every party. ``storage_path`` is accepted for the
        reference SDK's sake; each party keeps its network at its runner (see ``splitnn``).
        """
        self._need_client_name(client_name)
        return self._task(runner, client_name,
                          {"train": train_dataset_name, "test": test_dataset_name},
                          {"train": ("train_path", train_path), "test": ("test_path", test_path)},
                          "train", {"batch_size": batch_size, "storage_path": storage_path})

    def vfl_predict(self, dataset_name: str | None = None, batch_size: int = 1024,
                    client_name: str | None = None, storage_path: str | None = None,
                    raw_output: bool = False, *, dataset_path: str | None = None,
                    runner: str | None = None) -> dict[str, Any]:
        """A party of a vertical prediction session: one dataset the ``prl`` session linked.

        The label party writes the predictions to ``storage_path`` (``.csv`` or ``.parquet``,
        under its runner's data roots), with its own ids, in the linkage's row order;
        ``raw_output`` writes each class's probability instead of the predicted class.
        """
        self._need_client_name(client_name)
        return self._task(runner, client_name, {"train": dataset_name},
                          {"train": ("dataset_path", dataset_path)}, "train",
                          {"batch_size": batch_size, "storage_path": storage_path,
                           "raw_output": raw_output})

    @staticmethod
    def _need_client_name(client_name: str | None) -> None:
        if not client_name:
            from jupyter_fed.errors import ConfigError

            raise ConfigError("vfl tasks need a client_name",
                              "use one of the client names of the session's data_config")

    def eda(self, dataset_name: str | None = None, dataset_path: str | None = None, *,
            runner: str | None = None, client_name: str | None = None) -> dict[str, Any]:
        """An analytics client (EDA, statistics): one dataset, one compute step.

        With both ``dataset_name`` and ``dataset_path``, the path must hold that registered
        dataset (the name is the one the session's ``data_config`` uses).
        """
        return self._task(runner, client_name, {"data": dataset_name},
                          {"data": ("dataset_path", dataset_path)}, "data")

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
        """Resolve tasks given by path (see :class:`TaskBuilder`), start the session if it is
        not yet, and join every task as one client."""
        from jupyter_fed.client.paths import resolve_task

        tasks = [resolve_task(self.session._client, t) for t in self.tasks]
        if self.session.status() == "created":
            self.session.start()
        clients = self.session._backend.join(self.session.id, tasks)
        return TaskGroupContext(self.session, [c["client_id"] for c in clients])
