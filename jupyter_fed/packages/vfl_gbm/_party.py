"""One party's view of a vfl_gbm step, and the replay rule every step that moves its state keeps.

:class:`Party` reads the configs, checks the party's aligned datasets and columns and opens its
state file; :func:`label_party` / :func:`passive_party` insist on the role a step needs.
:func:`replay` and :func:`save` make a retried step (an answer lost on the way) replay its stored
answer instead of acting twice, and refuse a step that arrives out of order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._vertical_party import VerticalParty
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.vfl_gbm._state import GbmPartyFile
from jupyter_fed.packages.vfl_gbm.config import parse

__all__ = ["Party", "label_party", "passive_party", "replay", "save"]


class Party(VerticalParty):
    """One party's view of a step: configs, its aligned rows, its columns, its file."""

    def __init__(self, ctx: StepContext, datasets: dict[str, DatasetHandle],
                 params: dict[str, Any]) -> None:
        super().__init__(ctx, datasets, params,
                         *parse(params.get("model_config"), params.get("data_config")))
        self.file = GbmPartyFile(ctx, self.client)

    def x(self, role: str) -> np.ndarray:
        return self.handles[role].to_numpy(self.mine.predictors, np.float64)

    def y(self, role: str) -> np.ndarray:
        assert self.mine.target is not None
        y = self.handles[role].to_numpy([self.mine.target], np.float64)[:, 0]
        if not np.isfinite(y).all():
            raise ConfigError(f"target {self.mine.target!r} has missing values", "")
        if self.cfg.classification and not np.isin(y, (0.0, 1.0)).all():
            raise ConfigError(f"target {self.mine.target!r} of dataset "
                              f"{self.handles[role].info.name!r} must hold 0 and 1: vfl_gbm "
                              "classification is binary", "recode the target")
        return y

    def offsets(self) -> dict[str, int]:
        """Global index of each party's first column (data_config order)."""
        out, at = {}, 0
        for c, d in self.data.clients.items():
            out[c] = at
            at += len(d.predictors)
        return out


def replay(meta: dict[str, Any], arrays: dict[str, np.ndarray], seq: int) -> StepResult | None:
    done = int(meta.get("seq", -1))
    if done == seq:
        return StepResult(tensors={k[5:]: v for k, v in arrays.items() if k.startswith("last.")},
                          outputs=dict(meta.get("outputs") or {}))
    if done != seq - 1:
        raise ConfigError(f"step {seq} arrived after step {done}: the party is out of step with "
                          "the session", "start a new session")
    return None


def save(p: Party, arrays: dict[str, np.ndarray], meta: dict[str, Any], seq: int,
          out: StepResult) -> StepResult:
    keep = {k: v for k, v in arrays.items() if not k.startswith("last.")}
    keep.update({f"last.{k}": v for k, v in out.tensors.items()})
    p.file.write(keep, {**meta, "seq": seq, "outputs": out.outputs})
    return out


def label_party(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any]) -> Party:
    p = Party(ctx, datasets, params)
    if not p.is_label:
        raise ConfigError("only the label party grows the trees", "")
    return p


def passive_party(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any]
             ) -> Party:
    p = Party(ctx, datasets, params)
    if p.is_label:
        raise ConfigError("the label party does not sum encrypted gradients", "")
    return p
