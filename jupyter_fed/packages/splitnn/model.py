"""Kernel half of splitnn: what a finished session hands back (never a party's network).

A training session gives :class:`SplitNNModel`: the head (unless the session was differentially
private), the metrics per epoch, and where each party's bottom network stays — at its runner,
under the session's id, which a prediction session (``training_session_id``) uses. A prediction
session gives the same class with :attr:`SplitNNModel.prediction` set: where the label party's
runner wrote the predictions (:class:`PredictionResult`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.packages.splitnn.config import parse

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = ["PredictionResult", "SplitNNModel", "show"]


class PredictionResult(dict):  # type: ignore[type-arg]
    """``{storage_path: where to read it}``, as the reference's ``prediction_result()`` returns.

    The predictions are rows, so the runner never sends them: they stay in the label party's
    file. When this kernel can read that file (same machine, permission to read it), the value is
    its path and :meth:`as_frame` reads it; otherwise the value is ``runner:path`` and
    :attr:`reason` says why it cannot be read here.
    """

    def __init__(self, written: dict[str, Any]) -> None:
        path = str(written.get("path", ""))
        self.client: str = str(written.get("client", ""))
        self.runner: str = str(written.get("runner", ""))
        self.path = path
        self.rows = int(written.get("rows", 0))
        self.columns: list[str] = list(written.get("columns") or [])
        self.readable = bool(path) and os.access(path, os.R_OK)
        self.reason = "" if self.readable else (
            f"the predictions stay at runner {self.runner!r} ({path}): a runner never sends rows, "
            "and this kernel cannot read that file; ask the runner's custodian for it")
        super().__init__({str(written.get("storage_path", path)):
                          path if self.readable else f"{self.runner}:{path}"})

    def as_frame(self) -> pd.DataFrame:
        """The predictions (the label party's id columns, then predictions), in aligned order."""
        import pandas as pd

        from jupyter_fed.errors import PermissionDenied

        if not self.readable:
            raise PermissionDenied(self.reason, "read the file at the runner")
        return pd.read_csv(self.path) if self.path.endswith(".csv") else pd.read_parquet(self.path)


class SplitNNModel:
    """A splitnn session's outcome (see the module docstring)."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.tensors = tensors
        self.config, self.data_config = parse(meta["model_config"], meta["data_config"])
        self.label_client: str = str(meta.get("label_client", ""))
        self.runners: dict[str, str] = dict(meta.get("runners") or {})
        self.rows = int(meta.get("rows", 0))
        written = meta.get("prediction")
        self.prediction = PredictionResult(written) if written else None
        self.session_id: str = str(meta.get("session_id", ""))

    @property
    def head_released(self) -> bool:
        return any(k.startswith("head.") for k in self.tensors)

    def head(self) -> torch.nn.Module:
        """The label party's head as a ``torch.nn.Module`` (its input: every party's embedding,
        concatenated in ``data_config`` order)."""
        from jupyter_fed.errors import PermissionDenied
        from jupyter_fed.packages.splitnn import _nets

        if not self.head_released:
            raise PermissionDenied("this session's head stayed at the label party (a "
                                   "differentially private session releases no network)",
                                   "predict with a vfl_mode='predict' session")
        assert self.config.model is not None
        top = _nets.head(self.config.model.head,
                         _nets.head_width(self.config, list(self.data_config.clients)))
        return _nets.load_numpy(top, self.tensors, "head.").eval()

    def as_pytorch(self) -> torch.nn.Module:
        return self.head()

    def __repr__(self) -> str:
        if self.prediction is not None:
            return (f"SplitNN predictions: {self.prediction.rows:,} rows at "
                    f"{self.prediction.client} ({self.prediction.runner})")
        parties = ", ".join(f"{c} ({r})" for c, r in self.runners.items())
        return (f"SplitNNModel({self.rows:,} linked rows; label party {self.label_client}; "
                f"bottom networks at {parties}; head "
                f"{'in this artefact' if self.head_released else 'at the label party'})")


def show(results: Any) -> list[Any]:
    """How ``%%federate splitnn`` shows a finished session."""
    if results.prediction is not None:
        return [repr(results), dict(results.prediction) if results.prediction.readable
                else results.prediction.reason]
    history = results.meta.get("history") or []
    lines = [repr(results)] + [
        f"model {i}: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(m.items()))
        for i, m in enumerate(history)]
    return ["\n".join(lines)]
