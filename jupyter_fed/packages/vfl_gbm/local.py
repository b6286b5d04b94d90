"""Runner half of vfl_gbm (SecureBoost): the label party grows the trees, the others bin and sum.

Label party (holds the target and the private Paillier key):

``start``  bins its columns, sets the baseline, makes the key pair; returns row counts, the
           alignment digest, its bins per column and the public modulus ``n``.
``grad``   a tree begins: gradients and hessians of the current scores, one Paillier ciphertext
           per row (packed ``g``/``h``).
``split``  one level: its own plaintext histograms plus the passive parties' decrypted ones; the
           best split of every node (gbm's :class:`~jupyter_fed.packages.gbm._grow.Grower`);
           routes its own splits' rows; tells each passive party only *which of its bins* split
           which node.
``finish`` a tree ends: leaf values, scores of the training and test rows, metrics — exact,
           with influence scores, for the round's one exact evaluation the runner grants
           (``_cost``); beyond it noisy loss and accuracy (training and test rows) and
           nothing else.
``predict`` (prediction sessions) walks every tree and writes the predictions.

Passive party:

``start``  bins its columns (edges stay here); returns row counts, digest, bins per column.
``hist``   one level: for each open node, column and bin, the encrypted sum of the rows' packed
           gradients (a product of ciphertexts), re-randomised; plus each bin's row count. A node
           whose rows (or its sibling's) are fewer than the policy's release minimum is
           withheld, as in HFL gbm, and not split.
``route``  the label party chose a bin of this party's column for some nodes: keep the
           threshold (here only) and say which rows (training and test) go right.
``bits``   (prediction sessions) left/right of every linked row at each split this party holds.

A retried step (an answer lost on the way) replays its stored answer instead of acting twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import DatasetHandle, StepContext, StepResult
from jupyter_fed.packages.gbm import parts as gbm_parts
from jupyter_fed.packages.gbm.parts import Grower, slots
from jupyter_fed.packages.vfl_gbm import _bins, _forest, _paillier, _valuation
from jupyter_fed.packages.vfl_gbm._party import (
    Party,
    label_party,
    passive_party,
    replay,
    save,
)
from jupyter_fed.packages.vfl_gbm._state import GbmPartyFile

__all__ = ["bits", "finish", "grad", "hist", "predict", "route", "split", "start"]

GROWER = ("feature", "bin", "gain", "stats", "open", "wanted")


def _int_bytes(v: int) -> np.ndarray:
    return np.frombuffer(int(v).to_bytes((int(v).bit_length() + 7) // 8, "big"), np.uint8).copy()


def _bytes_int(a: np.ndarray) -> int:
    return int.from_bytes(np.ascontiguousarray(a, np.uint8).tobytes(), "big")


# -- both parties ------------------------------------------------------------------------------
def start(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """Check the rows, bin the party's own columns; the label party also makes its key."""
    p = Party(ctx, datasets, params)
    outputs: dict[str, Any] = {
        "rows": {r: h.num_rows for r, h in p.handles.items()},
        "digests": {r: h.alignment.digest for r, h in p.handles.items()},  # type: ignore[attr-defined]
        "label_client": p.is_label}
    if p.cfg.vfl_mode == "predict":
        GbmPartyFile(ctx, p.client, p.cfg.training_session_id).read()
        return StepResult(outputs=outputs, num_examples=p.handles["train"].num_rows)
    x = p.x("train")
    cuts = _bins.edges(x, p.cfg.params.max_bins, p.cfg.seed)
    _bins.codes(x, cuts)  # refuses missing values now rather than mid-session
    if "test" in p.handles:
        _bins.codes(p.x("test"), cuts)
    padded, counts = _bins.pad(cuts)
    outputs["n_bins"] = [int(k) + 1 for k in counts]
    arrays: dict[str, np.ndarray] = {"edges": padded, "n_edges": counts}
    out_tensors: dict[str, np.ndarray] = {}
    if p.is_label:
        y = p.y("train")
        target = np.bincount(y.astype(np.intp), minlength=2).astype(np.float64) \
            if p.cfg.classification else np.array([len(y), y.sum()])
        base = float(gbm_parts.baseline(p.cfg.classification, 2, target)[0])
        pub, priv = _paillier.keypair(p.cfg.key_bits)
        arrays.update({"raw": np.full(len(y), base), "baseline": np.array([base]),
                       "key.n": _int_bytes(pub.n), "key.p": _int_bytes(priv.p),
                       "key.q": _int_bytes(priv.q)})
        if "test" in p.handles:
            arrays["raw_test"] = np.full(p.handles["test"].num_rows, base)
            p.y("test")
        out_tensors["pub_n"] = arrays["key.n"]
    with p.file.locked():
        p.file.write(arrays, {"seq": 0, "n_bins": outputs["n_bins"]})
    return StepResult(tensors=out_tensors, outputs=outputs, num_examples=len(x))


# -- the label party ---------------------------------------------------------------------------
def _grower(p: Party, n_bins: list[int]) -> Grower:
    prm = p.cfg.params
    return Grower(1, prm.max_depth, np.asarray(n_bins), min_samples_leaf=prm.min_samples_leaf,
                  l2=prm.l2_regularization, learning_rate=prm.learning_rate,
                  constant_hessian=False)


def _pack_grower(g: Grower) -> dict[str, np.ndarray]:
    out = {f"g.{k}": getattr(g, k) for k in GROWER}
    out.update({f"g.parent.{m}": h for (_k, m), h in g.parents.items()})
    return out


def _unpack_grower(p: Party, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Grower:
    g = _grower(p, meta["n_bins_all"])
    for k in GROWER:
        setattr(g, k, np.array(arrays[f"g.{k}"]))
    g.parents = {(0, int(k.rsplit(".", 1)[1])): np.array(v) for k, v in arrays.items()
                 if k.startswith("g.parent.")}
    g.level = int(meta["level"])
    return g


def grad(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    """A tree begins: encrypted gradients of every training row."""
    p = label_party(ctx, datasets, params)
    seq = int(params["seq"])
    with p.file.locked():
        arrays, meta = p.file.read()
        again = replay(meta, arrays, seq)
        if again is not None:
            return again
        y = p.y("train")
        g, h = gbm_parts.gradients(arrays["raw"][:, None], y, p.cfg.classification, 2)
        h = np.ones_like(g) if h is None else h
        n = _bytes_int(arrays["key.n"])
        priv = _paillier.private_key(n, _bytes_int(arrays["key.p"]), _bytes_int(arrays["key.q"]))
        cts = _paillier.encrypt_rows(priv.public_key, g[:, 0], h[:, 0], priv)
        n_bins = [int(b) for b in params["n_bins"]]
        if len(n_bins) != sum(len(d.predictors) for d in p.data.clients.values()) or \
                any(not 1 <= b <= 256 for b in n_bins):
            raise ConfigError("the coordinator sent bin counts that do not fit data_config", "")
        grower = _grower(p, n_bins)
        arrays = {k: v for k, v in arrays.items() if not k.startswith("g.")}
        arrays.update({"grad": g[:, 0], "hess": h[:, 0], **_pack_grower(grower)})
        meta.update(n_bins_all=n_bins, level=0, tree=int(params["tree"]))
        out = StepResult(tensors={"ct": cts, "pub_n": arrays["key.n"]},
                         outputs={"tree": int(params["tree"])}, num_examples=len(y))
        return save(p, arrays, meta, seq, out)


def split(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """One level: histograms (own and decrypted), best splits, own rows routed."""
    p = label_party(ctx, datasets, params)
    seq = int(params["seq"])
    with p.file.locked():
        arrays, meta = p.file.read()
        again = replay(meta, arrays, seq)
        if again is not None:
            return again
        grower = _unpack_grower(p, arrays, meta)
        node = np.asarray(tensors["node"], np.int64)
        x = p.x("train")
        if node.shape != (len(x),):
            raise ConfigError("the coordinator sent a malformed node array", "")
        open_slots = [m for _k, m in grower.open_nodes()]
        width = grower.bins
        offsets = p.offsets()
        total = sum(len(d.predictors) for d in p.data.clients.values())
        hist = np.zeros((len(open_slots), total, width, 3))
        lookup = np.full(slots(p.cfg.params.max_depth), -1, np.intp)
        lookup[open_slots] = np.arange(len(open_slots))
        pos = lookup[node]
        rows = np.flatnonzero(pos >= 0)
        cuts = _bins.unpad(arrays["edges"], arrays["n_edges"])
        codes = _bins.codes(x, cuts)
        own = offsets[p.client]
        size = len(open_slots) * width
        for j in range(codes.shape[0]):
            idx = pos[rows] * width + codes[j, rows]
            for c, w in enumerate((arrays["grad"][rows], arrays["hess"][rows], None)):
                hist[:, own + j, :, c] = np.bincount(idx, w, size).reshape(len(open_slots), width)
        n = _bytes_int(arrays["key.n"])
        priv = _paillier.private_key(n, _bytes_int(arrays["key.p"]), _bytes_int(arrays["key.q"]))
        for q in p.data.passive:
            k = len(p.data.clients[q].predictors)
            counts = np.asarray(tensors[f"cnt/{q}"], np.float64)
            if counts.shape != (len(open_slots), k, width):
                raise ConfigError(f"{q}'s histogram counts have the wrong shape", "")
            filled = np.flatnonzero(counts.ravel() > 0)
            sums = _paillier.decrypt_sums(priv, _paillier.from_bytes(tensors[f"enc/{q}"], n))
            if len(sums) != len(filled):
                raise ConfigError(f"{q} sent {len(sums)} sums for {len(filled)} filled bins", "")
            gh = np.zeros((counts.size, 2))
            gh[filled] = sums
            block = hist[:, offsets[q]:offsets[q] + k]
            block[..., :2] = gh.reshape(*counts.shape, 2)
            block[..., 2] = counts
        before = grower.feature.copy()
        withheld = {int(i) for q in p.data.passive for i in params.get("withheld", {}).get(q, [])}
        grower.split(hist, sorted(withheld))
        new = np.flatnonzero((grower.feature[0] >= 0) & (before[0] < 0))
        route = np.full(len(x), -1, np.int32)
        requests: dict[str, list[list[int]]] = {q: [] for q in p.data.passive}
        for m in new.tolist():
            f, b = int(grower.feature[0, m]), int(grower.bin[0, m])
            owner = next(c for c in reversed(list(offsets)) if offsets[c] <= f)
            if owner == p.client:
                here = node == m
                route[here] = 2 * m + 1 + (codes[f - own, here] > b)
            else:
                requests[owner].append([m, f - offsets[owner], b])
        out_t: dict[str, np.ndarray] = {"route": route}
        out_t.update({f"req/{q}": np.asarray(r, np.int32).reshape(-1, 3)
                      for q, r in requests.items() if r})
        arrays = {k: v for k, v in arrays.items() if not k.startswith("g.")}
        arrays.update(_pack_grower(grower))
        meta["level"] = grower.level
        out = StepResult(tensors=out_t, outputs={"open": [m for _k, m in grower.open_nodes()],
                                                 "splits": len(new)}, num_examples=len(rows))
        return save(p, arrays, meta, seq, out)


def _decisions(p: Party, arrays: dict[str, np.ndarray], x: np.ndarray, feature: np.ndarray,
               bins: np.ndarray, tree: int, given: _forest.Given) -> np.ndarray:
    """rows × slots: does the row go right at each inner slot of one tree? Own splits from the
    label party's columns and edges, the others' from their left/right bits (``given``)."""
    return _forest.decisions(x, _bins.unpad(arrays["edges"], arrays["n_edges"]),
                             p.offsets()[p.client], feature, bins, tree, given)


def _noisy_metrics(p: Party, raw: np.ndarray, y: np.ndarray, role: str) -> dict[str, Any]:
    """Loss and accuracy of raw scores ``raw`` on ``role``'s rows with differential privacy (as
    gbm's evaluations beyond the allowance): per-row log-loss or squared error, clipped by the
    policy; no ROC AUC."""
    if p.cfg.classification:
        losses, hits = np.logaddexp(0.0, raw) - y * raw, (raw > 0) == (y > 0.5)
    else:
        losses, hits = (raw - y) ** 2, None
    return p.noisy_metrics(role, losses, hits, f"{role}_")


def finish(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
           tensors: dict[str, np.ndarray]) -> StepResult:
    """A tree ends: leaf values, new scores, metrics on the test rows."""
    p = label_party(ctx, datasets, params)
    seq, tree = int(params["seq"]), int(params["tree"])
    with p.file.locked():
        arrays, meta = p.file.read()
        again = replay(meta, arrays, seq)
        if again is not None:
            return again
        grower = _unpack_grower(p, arrays, meta)
        n_feat = len(meta["n_bins_all"])
        done = grower.finish(np.zeros((n_feat, max(grower.bins, 1))))
        node = np.asarray(tensors["node"], np.intp)
        value = done["value"][0]
        if node.shape != arrays["raw"].shape or node.min(initial=0) < 0 or \
                node.max(initial=0) >= len(value):
            raise ConfigError("the coordinator sent a malformed node array", "")
        arrays["raw"] = arrays["raw"] + value[node]
        for name in ("feature", "bin", "value", "gain", "count"):
            prev = arrays.get(f"trees.{name}", np.zeros((0, len(value)), done[name].dtype))
            arrays[f"trees.{name}"] = np.concatenate([prev, done[name][:1].astype(prev.dtype)])
        y = p.y("train")
        outputs: dict[str, Any] = {}
        if p.evaluation("train") == "exact":
            outputs["train"], _ = gbm_parts.metrics(arrays["raw"][:, None], y,
                                                    p.cfg.classification, 2, "train_")
        elif p.evaluation("train") == "noisy":
            outputs["train"] = _noisy_metrics(p, arrays["raw"], y, "train")
        if "raw_test" in arrays:
            xt, yt = p.x("test"), p.y("test")
            given = _forest.given_bits(tensors, p.data.passive)
            right = _decisions(p, arrays, xt, done["feature"][0], done["bin"][0], tree, given)
            leaf = _forest.walk(right, done["feature"][0], p.cfg.params.max_depth)
            arrays["raw_test"] = arrays["raw_test"] + value[leaf]
            granted = p.evaluation("test")
            if granted == "exact":
                outputs["metrics"], _ = gbm_parts.metrics(arrays["raw_test"][:, None], yt,
                                                          p.cfg.classification, 2, "test_")
            elif granted == "noisy":
                outputs["metrics"] = _noisy_metrics(p, arrays["raw_test"], yt, "test")
            if p.cfg.influence_score.enable:
                # kept up to date every tree (the next one starts from it), released only with
                # the round's exact evaluation: each value is made of exact validation losses
                found = _valuation.tree_influence(
                    p.cfg, list(p.data.clients), list(p.offsets().values()), arrays, meta,
                    tree, yt, right, given,
                    lambda t, g: _decisions(p, arrays, xt, arrays["trees.feature"][t],
                                            arrays["trees.bin"][t], t, g))
                if granted == "exact":
                    outputs["influence"] = found
        arrays = {k: v for k, v in arrays.items()
                  if not k.startswith("g.") and k not in ("grad", "hess")}
        out_t = {} if not params.get("final") else {
            f"trees.{k}": arrays[f"trees.{k}"] for k in ("feature", "value", "gain", "count")}
        if params.get("final"):
            out_t["baseline"] = arrays["baseline"]
        out = StepResult(tensors=out_t, outputs=outputs, num_examples=len(y))
        return save(p, arrays, meta, seq, out)


def predict(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
            tensors: dict[str, np.ndarray]) -> StepResult:
    """The label party's prediction: every tree over every linked row, written where asked."""
    from jupyter_fed.packages.vfl_gbm._output import write_predictions

    p = label_party(ctx, datasets, params)
    if p.cfg.vfl_mode != "predict":
        raise ConfigError("only a prediction session predicts", "")
    arrays, _meta = GbmPartyFile(ctx, p.client, p.cfg.training_session_id).read()
    x = p.x("train")
    given = _forest.given_bits(tensors, p.data.passive)
    raw = np.full(len(x), float(arrays["baseline"][0]))
    feature, bins, value = arrays["trees.feature"], arrays["trees.bin"], arrays["trees.value"]
    for t in range(len(feature)):
        right = _decisions(p, arrays, x, feature[t], bins[t], t, given)
        raw += value[t][_forest.walk(right, feature[t], p.cfg.params.max_depth)]
    written = write_predictions(ctx, p.handles["train"], raw, p.cfg, params)
    return StepResult(outputs={"prediction": written}, num_examples=len(x))


# -- a passive party ---------------------------------------------------------------------------
def _small(ctx: StepContext, node: np.ndarray, open_slots: list[int]) -> list[int]:
    """Positions of the open nodes whose bin counts would describe fewer rows than the policy's
    release minimum — the node or its sibling (which the label party derives by subtraction)
    holds fewer (but some). They are withheld, and the label party splits neither."""
    from jupyter_fed.privacy.suppression import release_minimum

    minimum = release_minimum(ctx.policy.get("train") or {}, 1)
    here = np.bincount(node[node >= 0], minlength=max(open_slots) + 2)
    out = []
    for i, m in enumerate(open_slots):
        sib = (m + 1 if m % 2 else m - 1) if m else m
        if any(0 < here[s] < minimum for s in (m, sib)):
            out.append(i)
    return out


def hist(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    """Encrypted gradient sums per open node, own column and bin, and each bin's row count."""
    p = passive_party(ctx, datasets, params)
    seq = int(params["seq"])
    with p.file.locked():
        arrays, meta = p.file.read()
        again = replay(meta, arrays, seq)
        if again is not None:
            return again
        x = p.x("train")
        if "ct" in tensors:  # a new tree: keep its ciphertexts for the levels to come
            arrays["ct"], arrays["pub_n"] = tensors["ct"], tensors["pub_n"]
        if "ct" not in arrays:
            raise ConfigError("no encrypted gradients for this tree", "")
        n = _bytes_int(arrays["pub_n"])
        cts = _paillier.from_bytes(arrays["ct"], n)
        node = np.asarray(tensors["node"], np.int64)
        if len(cts) != len(x) or node.shape != (len(x),):
            raise ConfigError(f"{len(cts)} ciphertexts for {len(x)} aligned rows",
                              "every party must read the same linkage")
        open_slots = [int(m) for m in params["open"]]
        width = int(params["bins"])
        top, least = slots(p.cfg.params.max_depth), int(arrays["n_edges"].max(initial=0)) + 1
        if not open_slots or not least <= width <= 256 or \
                any(not 0 <= m < top for m in open_slots) or \
                node.min(initial=0) < -1 or node.max(initial=0) >= top:
            raise ConfigError("the coordinator asked for histograms of nodes the trees cannot "
                              "have", "the relay is not faithful; start a new session")
        lookup = np.full(max(int(node.max(initial=0)) + 1, max(open_slots) + 1), -1, np.intp)
        lookup[open_slots] = np.arange(len(open_slots))
        pos = np.where(node >= 0, lookup[np.maximum(node, 0)], -1)
        withheld = _small(ctx, node, open_slots)
        if withheld:
            pos[np.isin(pos, withheld)] = -1
        cuts = _bins.unpad(arrays["edges"], arrays["n_edges"])
        codes = _bins.codes(x, cuts)
        k = codes.shape[0]
        groups = np.full((k, len(x)), -1, np.int64)
        inside = pos >= 0
        for j in range(k):
            groups[j, inside] = (pos[inside] * k + j) * width + codes[j, inside]
        count = len(open_slots) * k * width
        flat = groups.ravel()
        sums = _paillier.subset_sums(n, cts * k, flat, count)
        counts = np.bincount(flat[flat >= 0], minlength=count)
        filled = [sums[i] for i in np.flatnonzero(counts > 0).tolist()]
        enc = _paillier.to_bytes(filled, _paillier.width(n))
        out = StepResult(tensors={"enc": enc, "cnt": counts.reshape(len(open_slots), k, width)
                                  .astype(np.float64)}, outputs={"withheld": withheld},
                         num_examples=int(inside.sum()))
        return save(p, arrays, meta, seq, out)


def route(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
          tensors: dict[str, np.ndarray]) -> StepResult:
    """Apply the bins the label party chose on this party's columns: keep the thresholds, say
    which training rows go to which child and which test rows go left."""
    p = passive_party(ctx, datasets, params)
    seq, tree = int(params["seq"]), int(params["tree"])
    with p.file.locked():
        arrays, meta = p.file.read()
        again = replay(meta, arrays, seq)
        if again is not None:
            return again
        x = p.x("train")
        node = np.asarray(tensors["node"], np.int64)
        req = np.asarray(tensors["req"], np.int64).reshape(-1, 3)
        cuts = _bins.unpad(arrays["edges"], arrays["n_edges"])
        top = slots(p.cfg.params.max_depth) // 2  # slots that can have children
        if node.shape != (len(x),) or (req[:, 0] < 0).any() or (req[:, 0] >= top).any() or \
                (req[:, 1] < 0).any() or (req[:, 1] >= len(cuts)).any() or any(
                not 0 <= b < len(cuts[f]) for f, b in req[:, 1:].tolist()):
            raise ConfigError("the label party asked for a split this party cannot make", "")
        out_route = np.full(len(x), -1, np.int32)
        thresholds = np.array([cuts[f][b] for f, b in req[:, 1:].tolist()])
        for (m, f, _b), thr in zip(req.tolist(), thresholds, strict=True):
            here = node == m
            out_route[here] = 2 * m + 1 + (x[here, f] > thr)
        rec = np.column_stack([np.full(len(req), tree), req[:, 0], req[:, 1], thresholds])
        arrays["splits"] = np.concatenate([arrays.get("splits", np.zeros((0, 4))), rec])
        out_t = {"route": out_route, "keys": np.column_stack([np.full(len(req), tree),
                                                              req[:, 0]]).astype(np.int32)}
        if "test" in p.handles:
            xt = p.x("test")
            out_t["bits"] = np.column_stack([xt[:, f] <= thr for f, thr in
                                             zip(req[:, 1].tolist(), thresholds, strict=True)]
                                            ).astype(np.uint8).reshape(len(xt), len(req))
        out = StepResult(tensors=out_t, num_examples=int((out_route >= 0).sum()))
        return save(p, arrays, meta, seq, out)


def bits(ctx: StepContext, datasets: dict[str, DatasetHandle], params: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> StepResult:
    """Prediction: left (1) or right (0) of every linked row at each of this party's splits."""
    p = passive_party(ctx, datasets, params)
    arrays, _meta = GbmPartyFile(ctx, p.client, p.cfg.training_session_id).read()
    x = p.x("train")
    rec = arrays.get("splits", np.zeros((0, 4)))
    cols = [x[:, int(f)] <= thr for f, thr in zip(rec[:, 2], rec[:, 3], strict=True)]
    out = np.column_stack(cols).astype(np.uint8) if cols else np.zeros((len(x), 0), np.uint8)
    return StepResult(tensors={"bits": out, "keys": rec[:, :2].astype(np.int32)},
                      num_examples=len(x))
