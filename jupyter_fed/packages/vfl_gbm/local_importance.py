"""Runner half of vfl_gbm's feature importance: SHAP values of each party's own columns.

Run once, after the last tree, on the same subsample of linked training rows at every party
(``_valuation.subsample_rows``), with shap's permutation explainer in two passes
(``packages/_shap``). A split's threshold never leaves its party, so a passive party cannot
evaluate the trees; it sends *decisions* instead:

``explain_bits`` (every passive party)
    The explainer's first pass over the party's own columns records the perturbed rows it asks
    for (each explained row with some of the party's columns swapped for a background row's).
    The party returns, for each of its splits (tree, node), the left/right bit of every
    explained row and of every perturbed row, and which explained row each perturbed one
    belongs to. No column value and no threshold leaves, only bits (packed eight to a byte).
``explain_model`` (the label party)
    Walks the trees for each passive party's perturbed rows: that party's splits follow its
    perturbed bits, every other split the explained row's actual decision (the label party's
    own columns, the other passive parties' bits). Returns that party the raw scores and nothing
    else. It explains its own columns alone, with the same two passes run locally (one
    vectorised walk of the trees for every perturbed row).
``explain_finish`` (every passive party)
    The explainer's second pass, answered by those raw scores; returns mean |SHAP| per column
    (and per-row values only when the dataset's policy sets ``release_shap_details``).

A SHAP summary measures the model on a party's training rows: ``explain_model`` and
``explain_finish`` declare an evaluation (``_cost``) and report scores only for the exact one
the runner grants after the last tree — run again over other rows, two summaries would describe
the rows in between.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages import _shap
from jupyter_fed.packages._valuation import subsample_rows
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.vfl_gbm import _bins, _forest
from jupyter_fed.packages.vfl_gbm._party import (
    Party,
    label_party,
    passive_party,
    replay,
    save,
)

__all__ = ["explain_bits", "explain_finish", "explain_model"]


class _Explained:
    """The explained rows and the background of one party (the same rows at every party)."""

    def __init__(self, p: Party) -> None:
        if p.cfg.vfl_mode != "train" or not p.cfg.feature_importance_score.enable:
            raise ConfigError("feature importance is computed at the end of a training session "
                              "that enables it", "")
        self.fi = p.cfg.feature_importance_score.params
        x = p.x("train")
        self.x = x[subsample_rows(len(x), self.fi)]
        self.background = x[_shap.background_rows(len(x), self.fi)]
        self.policy = dict(p.ctx.policy.get("train") or {})


def _split_bits(x: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """rows × splits: 1 where the row goes left (``x <= threshold``) at each of this party's
    splits (rows of ``splits``: tree, node, column, threshold)."""
    if not len(splits):
        return np.zeros((len(x), 0), np.uint8)
    cols = splits[:, 2].astype(np.intp)
    return (x[:, cols] <= splits[:, 3][None, :]).astype(np.uint8)


def _unpack(tensors: dict[str, np.ndarray], name: str, rows: int, width: int) -> np.ndarray:
    got = tensors.get(name)
    if got is None or got.ndim != 2 or len(got) != rows or got.shape[1] != (width + 7) // 8:
        raise ConfigError(f"the coordinator sent a malformed {name!r}",
                          "the relay is not faithful; start a new session")
    return np.unpackbits(np.ascontiguousarray(got, np.uint8), axis=1, count=width)


def explain_bits(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
                 tensors: dict[str, np.ndarray]) -> StepResult:
    """A passive party's first pass: the bits of its explained and perturbed rows."""
    p = passive_party(ctx, datasets, params)
    seq = int(params["seq"])
    e = _Explained(p)
    with p.file.locked():
        arrays, meta = p.file.read()
        again = replay(meta, arrays, seq)
        if again is not None:
            return again
        inputs, owner, digest = _shap.record(e.x, e.background, 1, e.fi)
        splits = arrays.get("splits", np.zeros((0, 4)))
        arrays["shap.owner"] = owner
        meta["shap_digest"] = digest
        out = StepResult(tensors={
            "keys": splits[:, :2].astype(np.int32).reshape(-1, 2),
            "bits": np.packbits(_split_bits(e.x, splits), axis=1),
            "perturbed": np.packbits(_split_bits(inputs, splits), axis=1),
            "owner": owner}, outputs={"splits": len(splits)}, num_examples=len(e.x))
        return save(p, arrays, meta, seq, out)


def explain_model(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
                  tensors: dict[str, np.ndarray]) -> StepResult:
    """The label party: raw scores of every passive party's perturbed rows, and the SHAP values
    of its own columns."""
    p = label_party(ctx, datasets, params)
    seq = int(params["seq"])
    e = _Explained(p)
    with p.file.locked():
        arrays, meta = p.file.read()
        again = replay(meta, arrays, seq)
        if again is not None:
            return again
        k = len(e.x)
        feature = arrays["trees.feature"]
        offsets = list(p.offsets().values())
        keys: dict[str, np.ndarray] = {}
        actual: dict[str, np.ndarray] = {}
        for i, q in enumerate(p.data.clients):
            if q == p.client:
                continue
            keys[q] = np.asarray(tensors.get(f"keys/{q}", np.zeros((0, 2))), np.int64
                                 ).reshape(-1, 2)
            t, m = keys[q].T
            if len(keys[q]) and ((t < 0).any() or (t >= len(feature)).any() or (m < 0).any()
                                 or (m >= feature.shape[1]).any() or
                                 (_forest.owners(feature[t, m], offsets) != i).any()):
                raise ConfigError(f"{q} sent bits of splits that are not its own", "")
            actual[q] = _unpack(tensors, f"bits/{q}", k, len(keys[q]))

        def given(rows: np.ndarray, swap: str | None = None, bits: np.ndarray | None = None
                  ) -> dict[tuple[int, int], np.ndarray]:
            """Each passive split's bit for the explained rows ``rows`` — ``swap``'s from its
            perturbed ``bits`` instead."""
            out: dict[tuple[int, int], np.ndarray] = {}
            for q, ks in keys.items():
                b = bits if q == swap and bits is not None else actual[q][rows]
                out.update({(int(t), int(m)): b[:, i] for i, (t, m) in enumerate(ks.tolist())})
            return out

        cuts = _bins.unpad(arrays["edges"], arrays["n_edges"])
        own = p.offsets()[p.client]

        def raw(x: np.ndarray, bits: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
            out = np.full(len(x), float(arrays["baseline"][0]))
            for t, (feature, b, value) in enumerate(zip(
                    arrays["trees.feature"], arrays["trees.bin"], arrays["trees.value"],
                    strict=True)):
                right = _forest.decisions(x, cuts, own, feature, b, t, bits)
                out += value[_forest.walk(right, feature, p.cfg.params.max_depth)]
            return out

        out_t: dict[str, np.ndarray] = {}
        for q in p.data.passive:
            owner = np.asarray(tensors.get(f"owner/{q}", np.zeros(0)), np.int64)
            if owner.ndim != 1 or (len(owner) and (owner.min() < 0 or owner.max() >= k)):
                raise ConfigError(f"the coordinator sent a malformed 'owner/{q}'", "")
            perturbed = _unpack(tensors, f"perturbed/{q}", len(owner), len(keys[q]))
            out_t[f"out/{q}"] = raw(e.x[owner], given(owner, q, perturbed))[:, None]
        if p.evaluation("train") == "exact":
            inputs, owner, digest = _shap.record(e.x, e.background, 1, e.fi)
            second = _shap.Replay(raw(inputs, given(owner))[:, None], owner, digest)
            values = _shap.explain(e.x, e.background, second, e.fi)
            second.check()
            summary, mine = _shap.summarise(values, list(p.mine.predictors), e.policy)
        else:  # a second summary over other rows is differencing
            summary, mine = _shap.withheld(k), {}
        out = StepResult(tensors={**out_t, **mine}, outputs={"importance": summary},
                         num_examples=k)
        return save(p, arrays, meta, seq, out)


def explain_finish(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
                   tensors: dict[str, np.ndarray]) -> StepResult:
    """A passive party's second pass, answered by the label party's raw scores."""
    p = passive_party(ctx, datasets, params)
    seq = int(params["seq"])
    e = _Explained(p)
    with p.file.locked():
        arrays, meta = p.file.read()
        again = replay(meta, arrays, seq)
        if again is not None:
            return again
        owner = arrays.get("shap.owner")
        if owner is None or "shap_digest" not in meta:
            raise ConfigError("no feature importance record: explain_bits did not run here", "")
        answers = tensors.get("out")
        if answers is None or answers.shape != (len(owner), 1) or \
                not np.isfinite(answers).all():
            raise ConfigError("the coordinator sent a malformed 'out'",
                              "the relay is not faithful; start a new session")
        if p.evaluation("train") == "exact":
            second = _shap.Replay(np.asarray(answers, np.float64), owner,
                                  str(meta["shap_digest"]))
            values = _shap.explain(e.x, e.background, second, e.fi)
            second.check()
            summary, out_t = _shap.summarise(values, list(p.mine.predictors), e.policy)
        else:
            summary, out_t = _shap.withheld(len(e.x)), {}
        out = StepResult(tensors=out_t, outputs={"importance": summary}, num_examples=len(e.x))
        return save(p, arrays, meta, seq, out)
