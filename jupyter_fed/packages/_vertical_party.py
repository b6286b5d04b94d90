"""What every vertical package's runner steps start from: which party this runner is, and its
linked rows with the columns ``data_config`` gives it checked.

The coordinator names the client in each step's params; the step reads only the rows the linkage
(``prl_session_id``) aligned, through ``DatasetHandle.aligned``, so every party's row ``i`` is
the same person.
"""

from __future__ import annotations

from typing import Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import DatasetHandle, StepContext

__all__ = ["VerticalParty"]


class VerticalParty:
    """One party's view of a vertical step: its configs, its aligned rows, its columns."""

    def __init__(self, ctx: StepContext, datasets: dict[str, DatasetHandle],
                 params: dict[str, Any], cfg: Any, data: Any) -> None:
        self.ctx, self.cfg, self.data = ctx, cfg, data
        self.client = str(params.get("client") or "")
        if self.client not in self.data.clients:
            raise ConfigError(f"the step names client {self.client!r}, which data_config does "
                              "not", "the coordinator names it")
        self.mine = self.data.clients[self.client]
        self.is_label = self.mine.label_client
        self.handles = {role: h.aligned(self.cfg.prl_session_id) for role, h in datasets.items()}
        wanted = [*self.mine.predictors, *([self.mine.target] if self.is_label else [])]
        for handle in self.handles.values():
            names = {c.name for c in handle.info.columns}
            missing = [c for c in wanted if c not in names]
            if missing:
                raise ConfigError(f"dataset {handle.info.name!r} has no column(s) "
                                  f"{', '.join(map(str, missing))}",
                                  f"check data_config.{self.client} against the catalog")
