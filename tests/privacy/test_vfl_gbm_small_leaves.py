"""Attack #6 against vfl_gbm: leaves, gains and splits over fewer rows than the policy's minimum.

The label party grows the trees from histograms over a *node array* — which node every aligned
training row is in — that the coordinator sends, and from passive parties' encrypted histograms
that the coordinator relays. Both are the coordinator's to forge: it holds every row's Paillier
ciphertext and the public key, so it can hand the label party ``Enc(g_i)`` of one row (times any
constant) as "a passive party's bin". The passive party's own minimum-rows rule (``hist``
withholds small nodes) therefore protects nothing at the label party, which used to apply no
minimum of its own: a leaf of one row left in ``trees.value`` (``-lr·g_i/h_i``: its sign is that
person's label) and ``trees.count``.

What a principal got before the fix, posting steps straight to the label party's runner (as the
coordinator it controls would), one throw-away session per person, no budget spent:

* a node array with only the target row at the root, plus a forged passive histogram of that
  row: the root could not split, became a one-row leaf, and ``finish`` released its value — the
  label of every row tried;
* the faithful node array (every row at the root) and a forged passive "bin" holding only
  ``Enc(k·g_i)`` (``k`` large, so its gain beats every real split): the label party split the
  root there, and the one-row left leaf's value gave the label again;
* no forgery at all: a session with ``min_samples_leaf: 1`` grew leaves of a handful of rows.

Now the label party keeps the node array itself and accepts only faithful refinements of it
(every row at the root when a tree starts; a row moves only into a child of the node it was in
when that node split, into the child its own columns say when the split is its own); splits
nodes only into children of at least the policy's release minimum (``min_samples_leaf`` below it
acts as it); and computes what it releases at ``finish`` — leaf values and counts, gains — from
its own gradients over the node array, refusing a leaf of fewer rows than the minimum.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_vertical_loss_oracle import A_COLS, B_COLS, DATA, Attacker, vfed  # noqa: F401

from jupyter_fed.wire import decode

MINIMUM = 10
"""The label party's release minimum under the default policy: max(min_count 10, 1 + 5)."""
N_BINS = [9] * (len(A_COLS) + len(B_COLS))
WIDTH = max(N_BINS)
GBM = {"strategy": {"name": "VflGbm", "params": {}},
       "model": {"params": {"max_depth": 2, "learning_rate": 0.3, "max_bins": 8, "max_iter": 1,
                            "min_samples_leaf": 1}},
       "ml_task": {"type": "classification", "params": {}}, "seed": 3, "key_bits": 1024,
       "influence_score": {"enable": False}}
ROWS = [0, 1, 2, 3]


class Coordinator(Attacker):
    """The attacker of the loss-oracle tests, reading the label party's answers' tensors too."""

    def run(self, step: str, session: str, params: dict[str, Any],
            tensors: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """One step at the label party: ``{"ok", "outputs", "tensors", "texts"}``."""
        found = self.step("vfl_gbm", step, session, 1 if step != "start" else 0,
                          {"model_config": {**GBM, "prl_session_id": self.prl}, **params},
                          tensors)
        ok = found.get("status", {}).get("state") == "succeeded"
        return {"ok": ok, "outputs": (found["status"].get("outputs") or {}) if ok else {},
                "tensors": decode(found["result"]) if ok and found.get("result") else {},
                "texts": found["texts"]}

    def train_labels(self) -> np.ndarray:
        import pandas as pd

        y = pd.read_parquet(self.fed.data_root / "rb_train.parquet")["y"].to_numpy()
        return y[self.aligned("rb_train")]


@pytest.fixture()
def coordinator(vfed, tmp_path: Path):  # noqa: F811
    a = Coordinator(vfed, tmp_path / "coord")
    yield a
    a.client.close()


def _forged(ct: np.ndarray, n: int, bins: dict[int, tuple[list[int], int]]
            ) -> dict[str, np.ndarray]:
    """A passive histogram of the root made by the coordinator from the relayed ciphertexts:
    bin ``b`` of every column of party ``a`` holds ``Enc(k · sum of the rows)`` for
    ``bins[b] = (rows, k)``, its claimed count the number of those rows."""
    from jupyter_fed.packages.vfl_gbm import _paillier

    cts, nsq = _paillier.from_bytes(ct, n), n * n
    counts = np.zeros((1, len(A_COLS), WIDTH))
    sums = []
    for col in range(len(A_COLS)):
        for b, (rows, k) in sorted(bins.items()):
            counts[0, col, b] = len(rows)
            acc = 1
            for r in rows:
                acc = acc * cts[r] % nsq
            sums.append(pow(acc, k, nsq))
    return {"cnt/a": counts, "enc/a": _paillier.to_bytes(sums, _paillier.width(n))}


def _tree(c: Coordinator, row: int, *, isolate_at_root: bool) -> dict[str, Any]:
    """One throw-away session grown by a hostile coordinator to isolate ``row``; what the label
    party released (``ok`` False once it refused a step)."""
    session = uuid.uuid4().hex[:12]
    start = c.run("start", session, {})
    assert start["ok"], start["texts"]
    rows = start["outputs"]["rows"]["train"]
    g = c.run("grad", session, {"seq": 1, "tree": 0, "n_bins": N_BINS})
    assert g["ok"], g["texts"]
    ct, n = g["tensors"]["ct"], int.from_bytes(g["tensors"]["pub_n"].tobytes(), "big")
    others = [r for r in range(rows) if r != row]
    node = np.zeros(rows, np.int32)
    if isolate_at_root:  # only the target at the root; everyone else parked in a deeper slot
        node[others] = 3
        forged = _forged(ct, n, {0: ([row], 1)})
        leaves = np.zeros(rows, np.int32)
    else:  # the faithful root, and a "bin" of the target's gradient a million times over
        forged = _forged(ct, n, {0: ([row], 10**6), 1: (others, 1)})
        leaves = np.full(rows, 2, np.int32)
        leaves[row] = 1
    sp = c.run("split", session, {"seq": 2, "tree": 0, "level": 0, "withheld": {}},
               {"node": node, **forged})
    if not sp["ok"]:
        return sp
    done = {"node": leaves}
    if "req/a" in sp["tensors"]:  # the test rows' left/right bits at a's splits: any will do
        slots = sp["tensors"]["req/a"][:, 0]
        done["keys/a"] = np.column_stack([np.zeros_like(slots), slots]).astype(np.int32)
        done["bits/a"] = np.ones((start["outputs"]["rows"]["test"], len(slots)), np.uint8)
    elif not isolate_at_root:
        done["node"] = np.where(sp["tensors"]["route"] >= 0, sp["tensors"]["route"], 0
                                ).astype(np.int32)
    return c.run("finish", session, {"seq": 3, "tree": 0, "final": True}, done)


def _released_leaves(found: dict[str, Any]) -> list[tuple[float, float]]:
    """(value, count) of every leaf the label party released."""
    t = found["tensors"]
    if "trees.value" not in t:
        return []
    feature, value, count = t["trees.feature"][0], t["trees.value"][0], t["trees.count"][0]
    return [(float(v), float(k)) for f, v, k in zip(feature, value, count, strict=True)
            if f < 0 and k > 0]


@pytest.mark.parametrize("isolate_at_root", [True, False], ids=["crafted-node", "forged-bin"])
def test_a_hostile_coordinator_gets_no_leaf_of_one_row(coordinator, isolate_at_root) -> None:
    y = coordinator.train_labels()
    guessed, released = {}, []
    for row in ROWS:
        found = _tree(coordinator, row, isolate_at_root=isolate_at_root)
        leaves = _released_leaves(found) if found["ok"] else []
        released += leaves
        one = [v for v, k in leaves if k == 1]
        if one:  # -lr·(p - y)/h: positive exactly when the label is 1
            guessed[row] = int(one[0] > 0)
    if guessed:
        pytest.fail(f"one-row leaves released: labels guessed {guessed}, true "
                    f"{ {r: int(y[r]) for r in guessed} }")
    assert all(k >= MINIMUM for _v, k in released), released


def test_min_samples_leaf_below_the_minimum_grows_no_small_leaf(coordinator) -> None:
    model = {**GBM, "model": {"params": {**GBM["model"]["params"], "max_depth": 4,
                                         "max_iter": 2}}}
    session = coordinator.train("small", "vfl_gbm", model, 240)
    assert session.status() == "completed"
    trees = session.model().tensors
    leaf = (trees["trees.feature"] < 0) & (trees["trees.count"] > 0)
    counts = trees["trees.count"][leaf]
    assert counts.min() >= MINIMUM, f"leaves of {sorted(counts.tolist())[:5]} rows released"
    assert (trees["trees.feature"] >= 0).sum() >= 4  # still a tree, not a stump
