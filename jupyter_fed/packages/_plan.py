"""The coordinator half of every package: a plan that owns its session's flow.

``run(io)`` is the whole session: the engine calls it once (again after a restart, when
``io.checkpoint`` holds what the plan committed last) and marks the session completed when it
returns. Everything the plan needs from the engine goes through :class:`~._io.SessionIO`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from jupyter_fed.packages._io import SessionIO
from jupyter_fed.packages._schema import Problem

__all__ = ["Plan"]


class Plan(abc.ABC):
    """Base of every package's plan.

    Parameters
    ----------
    model_config, data_config
        The session's configuration, validated by the subclass in its ``__init__`` (so a bad
        field fails when the session is created, naming the field).
    num_rounds
        The session's ``num_rounds``: a number of rounds, or a maximum (Newton iterations), or
        ignored by one-shot packages (who say so in their documentation).
    """

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 1) -> None:
        self.model_config, self.data_config = dict(model_config), dict(data_config)
        self.num_rounds = num_rounds

    @abc.abstractmethod
    async def run(self, io: SessionIO) -> None:
        """Drive the session to its end (resuming from ``io.checkpoint`` when there is one)."""

    def check_datasets(self, datasets: Mapping[str, Mapping[str, Any]], runner: str
                       ) -> list[Problem]:
        """Problems with one client's datasets (role → catalog entry), before anything runs."""
        return []

    def check_client(self, client: str, datasets: Mapping[str, Mapping[str, Any]], runner: str
                     ) -> list[Problem]:
        """Problems with one joining client (its id, its datasets by role) before anything runs;
        by default :meth:`check_datasets`. Packages whose configuration is per client (record
        linkage, vertical learning) check the client's own part here."""
        return self.check_datasets(datasets, runner)

    def check_options(self, client: str, options: Mapping[str, Any]) -> list[Problem]:
        """Problems with the settings one client's task carries beside its datasets
        (``ClientInfo.options``). By default a package takes none, so a task that brings some
        is refused rather than silently ignored."""
        if not options:
            return []
        return [Problem("options", f"client {client!r}: this package takes no task options "
                        f"({', '.join(sorted(options))})")]

    def references(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Earlier sessions this one builds on: config field → (session id, the packages it must
        be of). The coordinator refuses the session, naming the field, unless each is a
        completed session of one of those packages (a vertical session's ``prl_session_id``)."""
        return {}

    def artefact_meta(self) -> dict[str, Any]:
        """What the kernel needs, beside the arrays, to rebuild the artefact (JSON)."""
        return {"model_config": self.model_config, "data_config": self.data_config}
