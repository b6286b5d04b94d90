"""Runner half of splitnn: each party's bottom network, and the head at the label party.

``start``
    Open the aligned rows of the linkage (``handle.aligned(prl_session_id)``), check columns and
    labels, set the party's standardisation from its own training rows and draw its network;
    return only row counts and the alignment's digest, which the plan compares across parties.
``forward`` (every party but the label party)
    Apply the gradients of the previous exchange, batch by batch, then embed the rows of the next
    exchange (and, when asked, every test row): one step carries many batches.
``head`` (the label party)
    Measure the current model on the test rows (when asked), then train its own bottom network
    and the head on the exchange's batches, with the other parties' embeddings as inputs, and
    return each party the gradient of the loss with respect to *its* embeddings. The test
    embeddings come from the coordinator, which may have crafted them, so the metrics and
    influence scores are exact only for the round's one exact evaluation the runner grants
    (``_dp.privacy_cost`` declares it); beyond it loss and accuracy with noise, as ffnet's, and
    no ROC AUC and no influence. The exchange's training loss leaves only beside the round's
    exact evaluation, and never under DP.
``predict`` (the label party, prediction sessions)
    Run the trained networks over the linked rows and write the predictions, with the party's own
    ids, to ``storage_path`` under the runner's data roots. Nothing but the file's place, its
    number of rows and its columns leaves.

Labels never leave the label party; a party's network never leaves it (see ``_party``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._metrics import r2, roc_auc
from jupyter_fed.packages._vertical_party import VerticalParty
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.splitnn import _dp, _nets, _valuation
from jupyter_fed.packages.splitnn._batches import chunk_batches
from jupyter_fed.packages.splitnn._party import PartyFile, pack_optimizer, unpack_optimizer
from jupyter_fed.packages.splitnn.config import SplitNNConfig, parse

__all__ = ["forward", "head", "predict", "privacy_cost", "start"]

privacy_cost = _dp.privacy_cost

_PARSED: OrderedDict[str, tuple[SplitNNConfig, Any, dict[str, Any]]] = OrderedDict()


def _parse(model_config: Any, data_config: Any) -> tuple[SplitNNConfig, Any, dict[str, Any]]:
    """The configs parsed, with each party's network section: validating them takes about as
    long as an exchange's arithmetic, and every step of a session sends the same ones."""
    key = json.dumps([model_config, data_config], sort_keys=True, default=str)
    found = _PARSED.get(key)
    if found is None:
        cfg, data = parse(model_config, data_config)
        features = {c: cfg.model.feature(c) for c in data.clients} if cfg.model else {}
        found = _PARSED[key] = (cfg, data, features)
        while len(_PARSED) > 8:
            _PARSED.popitem(last=False)
    return found


class Party(VerticalParty):
    """One party's view of a step: its configs, its aligned rows, its networks."""

    def __init__(self, ctx: StepContext, datasets: dict[str, DatasetHandle],
                 params: dict[str, Any]) -> None:
        cfg, data, self.features = _parse(params.get("model_config"), params.get("data_config"))
        super().__init__(ctx, datasets, params, cfg, data)
        self.num_rounds = max(int(params.get("num_rounds") or 1), 1)
        self.seed = int(params.get("seed", self.cfg.seed))
        self.rng = np.random.default_rng()  # DP noise: fresh entropy (a retry replays the file)

    # data -------------------------------------------------------------------------------------
    def x(self, role: str) -> Any:
        import torch

        return torch.from_numpy(self.handles[role].to_numpy(self.mine.predictors, np.float32))

    def y(self, role: str) -> Any:
        import torch

        assert self.mine.target is not None
        y = self.handles[role].to_numpy([self.mine.target], np.float64)[:, 0]
        if self.cfg.ml_task.type == "regression":
            return torch.from_numpy(y.astype(np.float32)).unsqueeze(1)
        k = self.cfg.classes
        if (y != np.round(y)).any() or y.min(initial=0) < 0 or y.max(initial=0) >= k:
            raise ConfigError(f"target {self.mine.target!r} of dataset "
                              f"{self.handles[role].info.name!r} must hold class labels "
                              f"0..{k - 1} for classification",
                              "set label_model.params.output_size to the number of classes")
        return torch.from_numpy(y.astype(np.int64))

    # networks ---------------------------------------------------------------------------------
    def build(self) -> tuple[Any, Any, Any]:
        assert self.cfg.model is not None
        net = _nets.bottom(self.cfg.model.feature(self.client), self.cfg.standardize)
        top = _nets.head(self.cfg.model.head, _nets.head_width(self.cfg, list(self.data.clients))) \
            if self.is_label else None
        params = list(net.parameters()) + (list(top.parameters()) if top is not None else [])
        return net, top, _nets.optimizer(self.cfg, params)

    def load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> tuple[Any, Any, Any]:
        net, top, opt = self.build()
        try:
            _nets.load_numpy(net, arrays, "bottom.")
            if top is not None:
                _nets.load_numpy(top, arrays, "head.")
        except RuntimeError:
            raise ConfigError("the stored splitnn model does not match model_config",
                              "predict with the model_config the training session used") from None
        unpack_optimizer(opt, arrays, meta.get("opt") or {})
        return net, top, opt

    def arrays(self, net: Any, top: Any, opt: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = _nets.to_numpy(net, "bottom.")
        if top is not None:
            arrays.update(_nets.to_numpy(top, "head."))
        opt_arrays, opt_meta = pack_optimizer(opt)
        return {**arrays, **opt_arrays}, {"opt": opt_meta}

    def noisy(self, values: np.ndarray, role: str, clip: str) -> np.ndarray:
        """``values`` as they may leave: as they are, or clipped and noised (DP)."""
        dp = self.cfg.differential_privacy_params
        if dp is None:
            return values.astype(np.float32)
        sigma = _dp.session_sigma(dp, self.ctx.policy, role, self.cfg.vfl_mode,
                                 self.num_rounds)
        return _dp.privatize(values, float(getattr(dp, clip)), sigma, self.rng)


def _replayed(meta: dict[str, Any], last: dict[str, np.ndarray], exchange: int
              ) -> StepResult | None:
    """The answer of an exchange this party already applied (a retried step), else ``None``."""
    done = int(meta.get("exchange", -1))
    if done == exchange:
        return StepResult(tensors=dict(last), outputs=dict(meta.get("outputs") or {}),
                          num_examples=int(meta.get("num_examples", 0)))
    if done != exchange - 1:
        raise ConfigError(f"exchange {exchange} arrived after exchange {done}: the party's "
                          "model is out of step with the session", "start a new session")
    return None


def _state(p: Party, pf: PartyFile) -> tuple[tuple[Any, Any, Any], dict[str, Any],
                                             dict[str, np.ndarray]]:
    """The party's networks, the file's metadata and the last answer: this worker's live copy
    when the file is still the one it wrote, else read from the file (call under the lock)."""
    live = pf.live()
    if live is not None:
        return live.nets, live.meta, live.last
    arrays, meta = pf.read()
    last = {k[5:]: v for k, v in arrays.items() if k.startswith("last.")}
    return p.load(arrays, meta), meta, last


def _save(p: Party, pf: PartyFile, nets: tuple[Any, Any, Any], out: dict[str, np.ndarray],
          meta: dict[str, Any]) -> None:
    """Write the party's state after an exchange and keep it live in this worker."""
    new, new_meta = p.arrays(*nets)
    meta = {**new_meta, **meta}
    pf.write({**new, **{f"last.{k}": v for k, v in out.items()}}, meta)
    pf.remember(nets, meta, out)


def start(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """Check the party's rows and set up (train) or find (predict) its model."""
    import torch

    p = Party(ctx, datasets, params)
    outputs = {"rows": {r: h.num_rows for r, h in p.handles.items()},
               "digests": {r: h.alignment.digest for r, h in p.handles.items()},  # type: ignore[attr-defined]
               "label_client": p.is_label}
    if p.cfg.vfl_mode == "predict":
        arrays, meta = PartyFile(ctx, p.client, p.cfg.training_session_id).read()
        p.load(arrays, meta)  # refuses a model that does not fit the configuration
        return StepResult(outputs=outputs, num_examples=p.handles["train"].num_rows)
    x = p.x("train")
    if p.is_label:
        p.y("train")
        if "test" in p.handles:
            p.y("test")
    torch.manual_seed(_nets.seeded(p.seed, p.client))
    net, top, opt = p.build()
    if p.cfg.standardize:  # the party's own moments: they never leave it
        std = x.std(0)
        net.standardize.mean.copy_(x.mean(0))
        net.standardize.scale.copy_(torch.where(std > 1e-12, std, torch.ones_like(std)))
    arrays, meta = p.arrays(net, top, opt)
    with PartyFile(ctx, p.client).locked():
        PartyFile(ctx, p.client).write(arrays, {**meta, "exchange": 0})
    return StepResult(outputs=outputs, num_examples=len(x))


def _schedule(params: dict[str, Any], key: str, n: int) -> list[np.ndarray]:
    where = params.get(key)
    if not where:
        return []
    round_, chunk = int(where[0]), int(where[1])
    return chunk_batches(int(params["seed"]), round_, chunk, n, int(params["batch_size"]),
                         int(params["exchange_batches"]))


def _expect(tensors: dict[str, np.ndarray], name: str, rows: int, width: int) -> np.ndarray:
    got = tensors.get(name)
    if got is None or got.shape != (rows, width) or not np.isfinite(got).all():
        raise ConfigError(f"the coordinator sent a malformed {name!r} (expected {rows} x {width} "
                          "finite values)", "the relay is not faithful; start a new session")
    return got.astype(np.float32, copy=False)


def forward(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """A passive party's exchange: apply the last gradients, embed the next batches."""
    import torch

    p = Party(ctx, datasets, params)
    if p.is_label:
        raise ConfigError("the label party computes the head, not forward", "")
    if p.cfg.vfl_mode == "predict":
        arrays, meta = PartyFile(ctx, p.client, p.cfg.training_session_id).read()
        net, _top, _opt = p.load(arrays, meta)
        with torch.no_grad():
            emb = net.eval()(p.x("train")).numpy()
        return StepResult(tensors={"emb": p.noisy(emb, "train", "embedding_clip")},
                          num_examples=len(emb))
    exchange = int(params["exchange"])
    pf = PartyFile(ctx, p.client)
    with pf.locked():
        nets, meta, last = _state(p, pf)
        again = _replayed(meta, last, exchange)
        if again is not None:
            return again
        try:
            out, n = _forward(p, nets, params, tensors)
            _save(p, pf, nets, out, {"exchange": exchange, "num_examples": n})
        except BaseException:
            pf.forget()  # the networks may have moved on from the file
            raise
    return StepResult(tensors=out, num_examples=n)


def _forward(p: Party, nets: tuple[Any, Any, Any], params: dict[str, Any],
             tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    import torch

    net, _top, opt = nets
    x = p.x("train")
    width = p.features[p.client].output_size
    applied = _schedule(params, "apply", len(x))
    if applied:
        grad = torch.from_numpy(_expect(tensors, "grad", sum(map(len, applied)), width))
        net.train()
        offset = 0
        for rows in applied:
            opt.zero_grad(set_to_none=True)
            net(x[torch.from_numpy(rows)]).backward(grad[offset:offset + len(rows)])
            opt.step()
            offset += len(rows)
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        ahead = _schedule(params, "forward", len(x))
        if ahead:
            out["emb"] = p.noisy(net(x[torch.from_numpy(np.concatenate(ahead))]).numpy(),
                                 "train", "embedding_clip")
        if params.get("test") and "test" in p.handles:
            out["test_emb"] = p.noisy(net(p.x("test")).numpy(), "test", "embedding_clip")
    return out, sum(map(len, applied)) + sum(map(len, ahead))


def _loss_fn(cfg: SplitNNConfig, reduction: str = "mean") -> Any:
    import torch

    if cfg.ml_task.type == "regression":
        return torch.nn.MSELoss(reduction=reduction)
    weights = cfg.ml_task.params.get("loss_weights")
    return torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32)
                                     if weights else None, reduction=reduction)


def metrics(cfg: SplitNNConfig, out: Any, y: Any) -> dict[str, Any]:
    """Loss and accuracy / ROC AUC (or R²) of outputs ``out`` against ``y``, ``test_`` prefixed."""
    import torch

    found = {"test_loss": float(_loss_fn(cfg)(out, y)), "test_num_examples": len(y)}
    if cfg.ml_task.type == "classification":
        prob = torch.softmax(out, dim=1).numpy().astype(np.float64)
        found["test_accuracy"] = float((prob.argmax(1) == y.numpy()).mean())
        found["test_roc_auc"] = roc_auc(y.numpy(), prob)
    else:
        found["test_r2"] = r2(y.numpy()[:, 0], out.numpy()[:, 0])
    return found


def noisy_metrics(p: Party, out: Any, y: Any) -> dict[str, Any]:
    """Loss and accuracy of outputs ``out`` against ``y`` with differential privacy (as ffnet's
    evaluations beyond the allowance): no ROC AUC or R², no influence scores."""
    losses = _loss_fn(p.cfg, "none")(out, y).reshape(len(y), -1).mean(1).numpy()
    hits = (out.argmax(1) == y).numpy() if p.cfg.ml_task.type == "classification" else None
    return p.noisy_metrics("test", losses, hits)


def _inputs(p: Party, net: Any, x: Any, given: dict[str, Any]) -> list[Any]:
    return [net(x) if c == p.client else given[c] for c in p.data.clients]


def _head(p: Party, nets: tuple[Any, Any, Any], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, Any], int]:
    import torch

    net, top, opt = nets
    widths = {c: p.features[c].output_size for c in p.data.passive}
    outputs: dict[str, Any] = {}
    granted = p.evaluation("test") if params.get("eval") else None
    if granted is not None:
        xt, yt = p.x("test"), p.y("test")
        given = {c: torch.from_numpy(_expect(tensors, f"test_emb/{c}", len(xt), w))
                 for c, w in widths.items()}
        net.eval(), top.eval()
        with torch.no_grad():
            inputs = _inputs(p, net, xt, given)
            found = top(torch.cat(inputs, 1))
            outputs["metrics"] = metrics(p.cfg, found, yt) if granted == "exact" else \
                noisy_metrics(p, found, yt)
        if p.cfg.influence_score.enable and granted == "exact":
            outputs["influence"] = _valuation.influence(
                p.cfg, list(p.data.clients), inputs, top, yt, _loss_fn(p.cfg),
                p.seed * 1_000_003 + int(params["exchange"]))
    x, y = p.x("train"), p.y("train")
    batches = _schedule(params, "train", len(x))
    out: dict[str, np.ndarray] = {}
    loss_fn, total, seen = _loss_fn(p.cfg), 0.0, 0
    if batches:
        rows = sum(map(len, batches))
        embs = {c: _expect(tensors, f"emb/{c}", rows, w) for c, w in widths.items()}
        grads = {c: np.empty((rows, w), np.float32) for c, w in widths.items()}
        net.train(), top.train()
        for b in batches:
            leaves = {c: torch.from_numpy(embs[c][seen:seen + len(b)]).requires_grad_()
                      for c in widths}
            idx = torch.from_numpy(b)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(top(torch.cat(_inputs(p, net, x[idx], leaves), 1)), y[idx])
            loss.backward()
            opt.step()
            for c, leaf in leaves.items():
                grads[c][seen:seen + len(b)] = leaf.grad.numpy()
            total += float(loss) * len(b)
            seen += len(b)
        if not np.isfinite(total):
            raise ConfigError("training diverged (the loss is not finite)",
                              "lower the optimizer's learning_rate")
        out = {f"grad/{c}": p.noisy(g, "train", "gradient_clip") for c, g in grads.items()}
        if p.evaluation("train") == "exact":  # the round's evaluated exchange, without DP
            outputs["train"] = {"train_loss": total / seen, "train_num_examples": seen}
    if params.get("final") and p.cfg.differential_privacy_params is None:
        out.update(_nets.to_numpy(top, "head."))  # trained parameters, as ffnet releases
    return out, outputs, seen


def head(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    """The label party's exchange: evaluate (when asked), then train on the exchange's batches."""

    p = Party(ctx, datasets, params)
    if not p.is_label:
        raise ConfigError("only the label party computes the head", "")
    assert p.cfg.model is not None
    exchange = int(params["exchange"])
    pf = PartyFile(ctx, p.client)
    with pf.locked():
        nets, meta, last = _state(p, pf)
        again = _replayed(meta, last, exchange)
        if again is not None:
            return again
        try:
            out, outputs, seen = _head(p, nets, params, tensors)
            _save(p, pf, nets, out, {"exchange": exchange, "outputs": outputs,
                                     "num_examples": seen})
        except BaseException:
            pf.forget()  # the networks may have moved on from the file
            raise
    return StepResult(tensors=out, outputs=outputs, num_examples=seen)


def predict(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """The label party's prediction: the model over every linked row, written where asked."""
    import torch

    from jupyter_fed.packages.splitnn._output import write_predictions

    p = Party(ctx, datasets, params)
    if not p.is_label or p.cfg.vfl_mode != "predict":
        raise ConfigError("only the label party of a prediction session predicts", "")
    assert p.cfg.model is not None
    arrays, meta = PartyFile(ctx, p.client, p.cfg.training_session_id).read()
    net, top, _opt = p.load(arrays, meta)
    x = p.x("train")
    given = {c: torch.from_numpy(_expect(tensors, f"emb/{c}", len(x),
                                         p.cfg.model.feature(c).output_size))
             for c in p.data.passive}
    net.eval(), top.eval()
    with torch.no_grad():
        out = top(torch.cat(_inputs(p, net, x, given), 1))
    written = write_predictions(ctx, p.handles["train"], out, p.cfg, params)
    return StepResult(outputs={"prediction": written}, num_examples=len(x))
