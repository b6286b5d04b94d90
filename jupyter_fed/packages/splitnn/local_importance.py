"""Runner half of splitnn's feature importance: SHAP values of each party's own columns.

Run once, after the last exchange, on the same subsample of linked training rows at every party
(``_valuation.subsample_rows``), with shap's permutation explainer (``packages/_shap``):

``explain_embed`` (every passive party)
    The explainer's first pass over the party's own columns records the perturbed rows it asks
    for (each explained row with some columns swapped for background rows' values); the party
    returns its bottom network's embeddings of them, of the explained rows themselves, and which
    explained row each perturbed one belongs to. Its columns never leave, only embeddings.
``explain_head`` (the label party)
    Evaluates the head on each passive party's perturbed embeddings, the other parties held at
    their actual embeddings of the same explained row, and returns that party the outputs (the
    class-1 probability, the class probabilities, or the prediction) and nothing else. It also
    explains its own columns, which it can do alone.
``explain_finish`` (every passive party)
    The explainer's second pass, answered by those outputs; returns mean |SHAP| per column (and
    per-row values only when the dataset's policy sets ``release_shap_details``).

A SHAP summary measures the model on a party's training rows: ``explain_head`` and
``explain_finish`` declare an evaluation (``_dp.privacy_cost``) and report scores only for the
exact one the runner grants after the last training round — run again over other rows, two
summaries would describe the rows in between.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages import _shap
from jupyter_fed.packages._valuation import subsample_rows
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.splitnn._party import PartyFile
from jupyter_fed.packages.splitnn.config import SplitNNConfig
from jupyter_fed.packages.splitnn.local import Party

__all__ = ["explain_embed", "explain_finish", "explain_head"]


def _explained(cfg: SplitNNConfig, out: Any) -> np.ndarray:
    import torch

    if cfg.ml_task.type == "regression":
        return out.numpy().astype(np.float64)
    prob = torch.softmax(out, dim=1).numpy().astype(np.float64)
    return prob[:, 1:2] if cfg.classes == 2 else prob


class _Explaining:
    """A party's final networks, its explained rows and background, for one explain step."""

    def __init__(self, ctx: StepContext, datasets: dict[str, DatasetHandle],
                 params: dict[str, Any]) -> None:
        self.p = p = Party(ctx, datasets, params)
        if p.cfg.vfl_mode != "train" or not p.cfg.feature_importance_score.enable:
            raise ConfigError("feature importance is computed at the end of a training session "
                              "that enables it", "")
        arrays, meta = PartyFile(ctx, p.client).read()
        self.net, self.top, _opt = p.load(arrays, meta)
        self.net.eval()
        if self.top is not None:
            self.top.eval()
        self.fi = p.cfg.feature_importance_score.params
        x = p.x("train").numpy()
        self.x = x[subsample_rows(len(x), self.fi)]
        self.background = x[_shap.background_rows(len(x), self.fi)]
        self.policy = dict(ctx.policy.get("train") or {})
        self.file = PartyFile(ctx, p.client, kind="splitnn_shap")

    def embed(self, z: np.ndarray) -> Any:
        import torch

        with torch.no_grad():
            return self.net(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)))


def explain_embed(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
                  tensors: dict[str, np.ndarray]) -> StepResult:
    """A passive party's first pass: embeddings of the perturbed rows the explainer asks for."""
    e = _Explaining(ctx, datasets, params)
    if e.p.is_label:
        raise ConfigError("the label party explains its columns in explain_head", "")
    width = len(e.p.cfg.explained_outputs)
    inputs, owner, digest = _shap.record(e.x, e.background, width, e.fi)
    with e.file.locked():
        e.file.write({"owner": owner}, {"digest": digest, "outputs": width})
    return StepResult(tensors={"emb": e.embed(e.x).numpy(), "perturbed": e.embed(inputs).numpy(),
                               "owner": owner}, num_examples=len(e.x))


def explain_head(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
                 tensors: dict[str, np.ndarray]) -> StepResult:
    """The label party: the model's outputs for every passive party's perturbed embeddings, and
    the SHAP values of its own columns."""
    import torch

    e = _Explaining(ctx, datasets, params)
    p = e.p
    if not p.is_label:
        raise ConfigError("only the label party evaluates the head", "")
    clients, k = list(p.data.clients), len(e.x)
    actual = {c: torch.from_numpy(_array(tensors, f"emb/{c}", np.float32, k)) for c in p.data.passive}
    actual[p.client] = e.embed(e.x)
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for c in p.data.passive:
            owner = _array(tensors, f"owner/{c}", np.int64, None)
            perturbed = _array(tensors, f"perturbed/{c}", np.float32, len(owner))
            if len(owner) and (owner.min() < 0 or owner.max() >= k):
                raise ConfigError(f"the coordinator sent a malformed 'owner/{c}'", "")
            idx = torch.from_numpy(owner)
            parts = [torch.from_numpy(perturbed) if d == c else actual[d][idx] for d in clients]
            out[f"out/{c}"] = _explained(p.cfg, e.top(torch.cat(parts, 1)))

    if p.evaluation("train") != "exact":  # a second summary over other rows is differencing
        return StepResult(tensors=out, outputs={"importance": _shap.withheld(k)},
                          num_examples=k)

    def model(row: int, z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            mine = e.embed(z)
            parts = [mine if d == p.client else actual[d][row:row + 1].expand(len(z), -1)
                     for d in clients]
            found = _explained(p.cfg, e.top(torch.cat(parts, 1)))
        return found[:, 0] if found.shape[1] == 1 else found

    values = _shap.explain(e.x, e.background, model, e.fi)
    summary, mine = _shap.summarise(values, list(p.mine.predictors), e.policy)
    return StepResult(tensors={**out, **mine}, outputs={"importance": summary}, num_examples=k)


def explain_finish(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
                   tensors: dict[str, np.ndarray]) -> StepResult:
    """A passive party's second pass, answered by the label party's outputs."""
    e = _Explaining(ctx, datasets, params)
    if e.p.evaluation("train") != "exact":
        return StepResult(outputs={"importance": _shap.withheld(len(e.x))},
                          num_examples=len(e.x))
    with e.file.locked():
        arrays, meta = e.file.read("feature importance record")
    owner = arrays["owner"]
    answers = _array(tensors, "out", np.float64, len(owner))
    if answers.ndim != 2 or answers.shape[1] != int(meta["outputs"]):
        raise ConfigError("the coordinator sent a malformed 'out'", "")
    replay = _shap.Replay(answers, owner, str(meta["digest"]))
    values = _shap.explain(e.x, e.background, replay, e.fi)
    replay.check()
    summary, out = _shap.summarise(values, list(e.p.mine.predictors), e.policy)
    return StepResult(tensors=out, outputs={"importance": summary}, num_examples=len(e.x))


def _array(tensors: dict[str, np.ndarray], name: str, dtype: Any, rows: int | None
           ) -> np.ndarray:
    got = tensors.get(name)
    if got is None or (rows is not None and len(got) != rows) or \
            (got.dtype.kind == "f" and not np.isfinite(got).all()):
        raise ConfigError(f"the coordinator sent a malformed {name!r}",
                          "the relay is not faithful; start a new session")
    return np.ascontiguousarray(got, dtype=dtype)
