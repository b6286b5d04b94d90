"""Coordinator half: FedAvg of the builder's ``Model`` over ``num_rounds`` rounds."""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.packages import Artefact, Payload, Plan, RoundMetrics, SessionIO

from . import user_model


def initial_weights(model_config: dict[str, Any]) -> dict[str, np.ndarray]:
    import torch

    torch.manual_seed(int(model_config.get("seed", 0)))
    net = user_model.Model(**model_config.get("model_args", {}))
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


class TorchPlan(Plan):
    """Every round: each client trains the global model, the coordinator averages by rows."""

    async def run(self, io: SessionIO) -> None:
        cfg = self.model_config
        params = {k: cfg[k] for k in ("lr", "epochs", "batch_size", "seed", "model_args")
                  if k in cfg}
        params["data"] = dict(self.data_config)
        if io.checkpoint is None:
            start, weights = 1, initial_weights(cfg)
        else:
            start, weights = io.checkpoint.round + 1, dict(io.checkpoint.arrays)
        for rnd in range(start, self.num_rounds + 1):
            found = await io.step("fit", Payload(params, weights), round=rnd)
            n = sum(a.num_examples for a in found)
            weights = {k: sum(a.tensors[k].astype(np.float64) * a.num_examples
                              for a in found) / n for k in weights}
            weights = {k: v.astype(np.float32) for k, v in weights.items()}
            loss = sum(float(a.outputs["train_loss"]) * a.num_examples for a in found) / n
            meta = {"round": rnd, "train_loss": loss, "num_examples": n,
                    "model_args": cfg.get("model_args", {})}
            await io.commit(rnd, state=weights, meta=meta,
                            metrics=RoundMetrics(rnd, {"train_loss": loss},
                                                 {a.client_id: {"train_loss":
                                                                a.outputs["train_loss"]}
                                                  for a in found}),
                            artefact=Artefact(weights, meta), done=rnd == self.num_rounds)
