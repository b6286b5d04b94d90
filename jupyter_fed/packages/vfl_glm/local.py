"""Runner half of vfl_glm: each party's coefficients, the label party's solve, BFV gradients.

``start`` (every party)
    Open the aligned rows of the linkage, check columns (and the target at the label party),
    standardise the party's predictors with its own training moments (they stay here) and set
    its coefficients to zero (the label party: its intercept to the link of the mean target).
    A passive party also makes a fresh BFV key (its secret key never leaves it) and encrypts its
    standardised training features, in fixed point, once: the label party gets the public key
    and these ciphertexts, which it cannot read.
``label`` (the label party, once a round)
    Measure the model on the test rows (when asked, and only for the round's exact evaluation
    the runner granted: see ``_cost``), then apply nothing it did not compute: given the images
    ``X_p D_p`` of each passive party's offered directions, minimise the deviance over its own
    coefficients and those directions (:func:`._solve.subspace_newton`), move its own
    coefficients and its running copy of each passive party's partial linear predictor, then
    compute the score vector ``s`` (the residuals, for canonical links) and, for each passive
    party, the encrypted ``X_pᵀ s`` from the party's ciphertexts and ``s`` in fixed point
    (plaintext × ciphertext products; re-randomised and masked so that only the total decrypts).
    It sends each passive party those ciphertexts and the coefficients of its directions — never
    ``s`` or a label.
``passive`` (every passive party, once a round)
    Move its coefficients by the label party's combination of its last directions, decrypt its
    gradient ``X_pᵀ s``, and offer its next directions (preconditioned gradient, last steps):
    their images ``X_p D_p`` on the training rows, and its partial linear predictor on the test
    rows for the label party's metrics. In a prediction session: the partial linear predictor of
    the linked rows.
``predict`` (the label party, prediction sessions)
    Add its own partial linear predictor, apply the inverse link and write the means, with its
    own ids, to ``storage_path`` under the runner's data roots.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._vertical_party import VerticalParty
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.eda_intersect import bfv
from jupyter_fed.packages.glm import family as glm_family
from jupyter_fed.packages.splitnn.party import PartyFile
from jupyter_fed.packages.vfl_glm import _solve, _valuation
from jupyter_fed.packages.vfl_glm.config import parse, parse_options

__all__ = ["importance", "label", "passive", "predict", "start"]

KIND = "vfl_glm"


class Party(VerticalParty):
    """One party's view of a step: its configs, its aligned rows."""

    def __init__(self, ctx: StepContext, datasets: dict[str, DatasetHandle],
                 params: dict[str, Any]) -> None:
        super().__init__(ctx, datasets, params,
                         *parse(params.get("model_config"), params.get("data_config")))
        self.family, self.link = self.cfg.ml_task.type, self.cfg.ml_task.link

    def file(self, session_id: str | None = None) -> PartyFile:
        return PartyFile(self.ctx, self.client, session_id, kind=KIND)

    def x(self, role: str) -> np.ndarray:
        x = self.handles[role].to_numpy(self.mine.predictors, np.float64)
        if not np.isfinite(x).all():
            raise ConfigError(f"a predictor of dataset {self.handles[role].info.name!r} has "
                              "missing or infinite values", "impute them before the session")
        return x

    def y(self, role: str) -> np.ndarray:
        assert self.mine.target is not None
        y = self.handles[role].to_numpy([self.mine.target], np.float64)[:, 0]
        why = glm_family.check_target(self.family, y) if np.isfinite(y).all() else "is missing"
        if why:
            raise ConfigError(f"target {self.mine.target!r} of dataset "
                              f"{self.handles[role].info.name!r} {why}", "")
        return y

    def design(self, role: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Standardised predictors (and, at the label party, the intercept column first)."""
        z = (self.x(role) - arrays["mean"]) / arrays["scale"]
        return np.c_[np.ones(len(z)), z] if self.is_label else z


def _expect(tensors: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    got = tensors.get(name)
    if got is None or got.shape != shape or not np.isfinite(got).all():
        raise ConfigError(f"the coordinator sent a malformed {name!r} (expected {shape} finite "
                          "values)", "the relay is not faithful; start a new session")
    return got.astype(np.float64, copy=False)


def _replayed(meta: dict[str, Any], arrays: dict[str, np.ndarray], exchange: int
              ) -> StepResult | None:
    """The answer of an exchange this party already answered (a retried step), else ``None``."""
    done = int(meta.get("exchange", -1))
    if done == exchange:
        return StepResult(tensors={k[5:]: v for k, v in arrays.items() if k.startswith("last.")},
                          outputs=dict(meta.get("outputs") or {}),
                          num_examples=int(meta.get("num_examples", 0)))
    if done != exchange - 1:
        raise ConfigError(f"exchange {exchange} arrived after exchange {done}: the party's "
                          "model is out of step with the session", "start a new session")
    return None


def _save(pf: PartyFile, arrays: dict[str, np.ndarray], meta: dict[str, Any],
          out: StepResult, exchange: int) -> StepResult:
    keep = {k: v for k, v in arrays.items() if not k.startswith("last.")}
    pf.write({**keep, **{f"last.{k}": v for k, v in out.tensors.items()}},
             {**meta, "exchange": exchange, "outputs": out.outputs,
              "num_examples": out.num_examples})
    return out


def start(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """Check the party's rows and set up (train) or find (predict) its coefficients."""
    p = Party(ctx, datasets, params)
    outputs: dict[str, Any] = {
        "rows": {r: h.num_rows for r, h in p.handles.items()},
        "digests": {r: h.alignment.digest for r, h in p.handles.items()},  # type: ignore[attr-defined]
        "label_client": p.is_label}
    if p.cfg.vfl_mode == "predict":
        arrays, _meta = p.file(p.cfg.training_session_id).read("model")
        if len(arrays.get("beta", ())) != len(p.mine.predictors) + int(p.is_label):
            raise ConfigError("the stored vfl_glm model does not match data_config",
                              "predict with the data_config the training session used")
        return StepResult(outputs=outputs, num_examples=p.handles["train"].num_rows)
    x = p.x("train")
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    arrays: dict[str, np.ndarray] = {"mean": mean, "scale": scale}
    out = StepResult(outputs=outputs, num_examples=len(x))
    if p.is_label:
        y = p.y("train")
        if "test" in p.handles:
            p.y("test")
        beta = np.zeros(x.shape[1] + 1)
        beta[0] = glm_family.link(p.link, float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
                               if p.family == "logistic" else float(y.mean()))
        arrays["beta"] = beta
    else:
        z = (x - mean) / scale
        bits = _solve.x_scale_bits(z)
        key = bfv.new_context()
        chunks = bfv.encrypt_fields(key, _solve.to_fixed(z, bits))
        gram = z.T @ z / len(z)
        arrays.update(beta=np.zeros(x.shape[1]), secret=np.frombuffer(
            bfv.secret_bytes(key), dtype=np.uint8).copy(),
            precondition=np.linalg.pinv(gram + 1e-9 * np.eye(len(gram))))
        outputs["x_bits"] = bits
        out = StepResult(tensors={"public": np.frombuffer(bfv.public_context(key), dtype=np.uint8
                                                          ).copy(), **bfv.pack(chunks)},
                         outputs={**outputs, "width": int(z.shape[1])}, num_examples=len(x))
    pf = p.file()
    with pf.locked():
        pf.write(arrays, {"exchange": 0, "x_bits": outputs.get("x_bits")})
    return out


def label(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """The label party's round: metrics, the subspace solve, the encrypted gradients."""
    p = Party(ctx, datasets, params)
    if not p.is_label:
        raise ConfigError("only the label party solves", "")
    exchange = int(params["exchange"])
    widths = {c: int(w) for c, w in (params.get("directions") or {}).items()}
    pf = p.file()
    with pf.locked():
        arrays, meta = pf.read()
        again = _replayed(meta, arrays, exchange)
        if again is not None:
            return again
        z, y = p.design("train", arrays), p.y("train")
        n, passive = len(y), p.data.passive
        if params.get("keys"):  # round 1: the passive parties' public keys and ciphertexts
            for c in passive:
                for k in ("public", "ct", "ct_sizes"):
                    arrays[f"{k}/{c}"] = tensors[f"{k}/{c}"]
        u = {c: arrays.get(f"u/{c}", np.zeros(n)) for c in passive}
        outputs: dict[str, Any] = {}
        # exact metrics and influence for the round's one exact evaluation only; beyond it
        # nothing (as glm): the deviance has no small sensitivity worth a noisy answer here
        if params.get("eval") and "test" in p.handles and p.evaluation("test") == "exact":
            zt, yt = p.design("test", arrays), p.y("test")
            parts = {c: _expect(tensors, f"test_u/{c}", (len(yt),)) for c in passive}
            parts[p.client] = zt[:, 1:] @ arrays["beta"][1:]
            eta_t = arrays["beta"][0] + sum(parts.values(), np.zeros(len(yt)))
            outputs["metrics"] = glm_family.metrics(p.family, yt, glm_family.inverse_link(
                p.link, eta_t), eta_t)
            if p.cfg.influence_score.enable:
                clients = list(p.data.clients)
                outputs["influence"] = _valuation.influence(
                    p.cfg, clients, [parts[c] for c in clients], float(arrays["beta"][0]), yt,
                    p.cfg.seed * 1_000_003 + exchange)
        eta0 = z @ arrays["beta"] + sum(u.values(), np.zeros(n))
        images = [_expect(tensors, f"images/{c}", (n, widths[c])) for c in passive
                  if widths.get(c)]
        out_t: dict[str, np.ndarray] = {}
        if not params.get("final"):
            before = _solve.deviance(p.family, p.link, y, eta0)
            theta, dev = _solve.subspace_newton(p.family, p.link, y, eta0,
                                                np.concatenate([z, *images], axis=1))
            arrays["beta"] = arrays["beta"] + theta[:z.shape[1]]
            at = z.shape[1]
            for c in passive:
                k = widths.get(c, 0)
                coef = theta[at:at + k]
                if k:
                    u[c] = u[c] + tensors[f"images/{c}"].astype(np.float64) @ coef
                    arrays[f"u/{c}"] = u[c]
                out_t[f"step/{c}"] = coef
                at += k
            eta = z @ arrays["beta"] + sum(u.values(), np.zeros(n))
            score, _w = glm_family.score_weights(p.family, p.link, y, eta,
                                              glm_family.inverse_link(p.link, eta))
            bits = _solve.residual_bits(score)
            fixed = _solve.to_fixed(score, bits)[:, None]
            for c in passive:
                chunks = bfv.unpack({"ct": arrays[f"ct/{c}"], "ct_sizes": arrays[f"ct_sizes/{c}"]})
                width = len(p.data.clients[c].predictors)
                result = bfv.evaluate(arrays[f"public/{c}"].tobytes(), chunks, width, fixed,
                                      np.zeros((1, width), dtype=np.int64))
                out_t.update({f"grad/{c}/{k}": v for k, v in bfv.pack(result).items()})
            outputs["score_bits"] = bits
            if p.evaluation("train") == "exact":  # the new fit measured on the training rows
                outputs["train"] = {"train_loss": dev / n, "train_num_examples": n}
                outputs["converged"] = bool(before - dev <= p.cfg.tol * max(abs(dev), 1.0))
            else:
                outputs["converged"] = False
        if params.get("final") and p.cfg.release_coefficients:
            out_t["coef"] = arrays["beta"][1:] / arrays["scale"]
            out_t["intercept"] = np.array([arrays["beta"][0] - float(
                (arrays["beta"][1:] * arrays["mean"] / arrays["scale"]).sum())])
        out = StepResult(tensors=out_t, outputs=outputs, num_examples=n)
        return _save(pf, arrays, meta, out, exchange)


def passive(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """A passive party's round: move by the label party's step, decrypt, offer directions."""
    p = Party(ctx, datasets, params)
    if p.is_label:
        raise ConfigError("the label party does not take a passive step", "")
    if p.cfg.vfl_mode == "predict":
        arrays, _meta = p.file(p.cfg.training_session_id).read("model")
        u = p.design("train", arrays) @ arrays["beta"]
        return StepResult(tensors={"u": u}, num_examples=len(u))
    exchange = int(params["exchange"])
    pf = p.file()
    with pf.locked():
        arrays, meta = pf.read()
        again = _replayed(meta, arrays, exchange)
        if again is not None:
            return again
        d = len(p.mine.predictors)
        steps = arrays.get("steps", np.zeros((d, 0)))
        if "directions" in arrays and params.get("apply"):
            coef = _expect(tensors, "step", (arrays["directions"].shape[1],))
            move = arrays["directions"] @ coef
            arrays["beta"] = arrays["beta"] + move
            steps = np.c_[move, steps][:, :p.cfg.memory]
            arrays["steps"] = steps
        out_t: dict[str, np.ndarray] = {}
        outputs: dict[str, Any] = {}
        if params.get("decrypt"):
            bits = int(meta["x_bits"]) + int(params["score_bits"])
            secret = arrays["secret"].tobytes()
            total = bfv.decrypt_sums(secret, bfv.unpack(tensors, "grad/"), d)[0]
            grad = total.astype(np.float64) / float(2 ** bits)
            direction = np.c_[arrays["precondition"] @ grad, steps]
            norms = np.linalg.norm(direction, axis=0)
            direction = direction[:, norms > 1e-300] / norms[norms > 1e-300]
            arrays["directions"] = direction
            out_t["images"] = p.design("train", arrays) @ direction
            outputs["directions"] = int(direction.shape[1])
        if params.get("test") and "test" in p.handles:
            out_t["test_u"] = p.design("test", arrays) @ arrays["beta"]
        if params.get("final") and p.cfg.release_coefficients:
            out_t["coef"] = arrays["beta"] / arrays["scale"]
            out_t["offset"] = np.array([-float((arrays["beta"] * arrays["mean"]
                                                / arrays["scale"]).sum())])
        out = StepResult(tensors=out_t, outputs=outputs, num_examples=len(arrays["mean"]))
        meta = {**meta}
        return _save(pf, arrays, meta, out, exchange)


def predict(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """The label party's prediction: the fitted means of every linked row, written where asked."""
    import pandas as pd

    p = Party(ctx, datasets, params)
    if not p.is_label or p.cfg.vfl_mode != "predict":
        raise ConfigError("only the label party of a prediction session predicts", "")
    arrays, _meta = p.file(p.cfg.training_session_id).read("model")
    handle = p.handles["train"]
    eta = p.design("train", arrays) @ arrays["beta"]
    for c in p.data.passive:
        eta = eta + _expect(tensors, f"u/{c}", (len(eta),))
    mu = glm_family.inverse_link(p.link, eta)
    options = parse_options(p.client, params.get("options"))
    if not options.storage_path:
        raise ConfigError("the label party's vfl_predict task names no storage_path",
                          "give storage_path: a .csv or .parquet path under the runner's "
                          "data roots")
    if ctx.output_path is None:
        raise ConfigError("predictions can only be written by a runner", "")
    target = ctx.output_path(options.storage_path)
    ids = [c.name for c in handle.info.columns if c.role == "id"]
    frame = (handle.to_pandas(ids) if ids else pd.DataFrame(index=range(handle.num_rows))
             ).reset_index(drop=True)
    if p.family == "logistic" and not options.raw_output:
        frame["prediction"] = (mu > 0.5).astype(np.int64)
    elif p.family == "logistic":
        frame["probability_0"], frame["probability_1"] = 1.0 - mu, mu
    else:
        frame["prediction"] = mu
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if target.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    written = {"storage_path": options.storage_path, "path": str(target), "rows": len(frame),
               "columns": list(frame.columns), "id_columns": ids,
               "format": target.suffix.lower().lstrip(".")}
    return StepResult(outputs={"prediction": written}, num_examples=len(frame))


def importance(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
               tensors: dict[str, np.ndarray]) -> StepResult:
    """A party's SHAP values of its own columns on a subsample of the linked training rows.

    On the link scale the model is additive over columns, so with the training rows as the
    background the (interventional) SHAP value of column ``j`` for a row is exactly
    ``β_j (z_j - mean(z_j))`` = ``β_j z_j`` (every column is centred on its training mean): what
    shap's ``LinearExplainer`` computes, without its cost. Only mean |SHAP| per column leaves,
    unless the dataset's policy sets ``release_shap_details`` — and only when the runner granted
    the step the round's exact evaluation of the training rows: re-run over every row and over
    all but one, two summaries would give that person's ``|β_j z_j|``.
    """
    from jupyter_fed.packages import _shap
    from jupyter_fed.packages._valuation import subsample_rows

    p = Party(ctx, datasets, params)
    if p.cfg.vfl_mode != "train" or not p.cfg.feature_importance_score.enable:
        raise ConfigError("feature importance is computed at the end of a training session "
                          "that enables it", "")
    arrays, _meta = p.file().read("model")
    x = p.x("train")
    rows = subsample_rows(len(x), p.cfg.feature_importance_score.params)
    if p.evaluation("train") != "exact":  # a second summary over other rows is differencing
        return StepResult(outputs={"importance": _shap.withheld(len(rows))},
                          num_examples=len(rows))
    z = (x[rows] - arrays["mean"]) / arrays["scale"]
    beta = arrays["beta"][1:] if p.is_label else arrays["beta"]
    summary, out = _shap.summarise(z * beta, list(p.mine.predictors),
                                   dict(ctx.policy.get("train") or {}))
    return StepResult(tensors=out, outputs={"importance": summary}, num_examples=len(rows))
