"""What a vfl_gbm step costs at a runner: no epsilon, and which rows it measures the model on.

Nothing is spent (a dataset whose policy requires differential privacy refuses vfl_gbm), but the
runner must know which steps are training rounds and which measure a model on rows, to hold the
measurements to one exact answer per training round (see ``runner.policy.Ledger.charge``). A
round is a tree:

* ``grad``, ``split`` and ``finish`` (label party), ``hist`` and ``route`` (passive parties) grow
  it: a training round;
* ``finish`` also measures the model ending with the tree on ``train`` (training metrics) and
  ``test`` (metrics and every party's influence score, from left/right bits the coordinator
  relays — so, for all the label party knows, of a model the coordinator crafted);
* ``explain_model`` (label party) and ``explain_finish`` (passive parties) summarise SHAP values
  of the training rows: a measurement on ``train``.

Runs on the runner's event loop on untrusted params: imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupyter_fed.packages._costs import vertical_costs
from jupyter_fed.privacy.accounting import PrivacyCost

__all__ = ["privacy_cost"]

GROWING = ("grad", "split", "hist", "route", "finish")
MEASURING = {"finish": ("train", "test"), "explain_model": ("train",),
             "explain_finish": ("train",)}


def privacy_cost(step: str, params: Any, facts: Mapping[str, Any]) -> dict[str, PrivacyCost]:
    """Dataset role → what ``step`` spends (nothing) and whether it trains or measures."""
    return vertical_costs(facts, trains=step in GROWING, measured=MEASURING.get(step, ()))
