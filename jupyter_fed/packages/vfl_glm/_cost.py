"""What a vfl_glm step costs at a runner: no epsilon, and which rows it measures the model on.

Nothing is spent (a dataset whose policy requires differential privacy refuses vfl_glm), but the
runner must know which steps are training rounds and which measure a model on rows, to hold the
measurements to one exact answer per training round (see ``runner.policy.Ledger.charge``):

* ``label`` with a solve (not ``final``) is the round's training step, and its training
  deviance measures the new fit on ``train``; with ``eval`` it measures the model on ``test``
  (the metrics and every party's influence score, from partial predictors the coordinator
  relays — so, for all the label party knows, a model the coordinator crafted);
* ``passive`` in a training session (every exchange: it moves its coefficients, offers
  directions or, last, its final partial predictor) is part of a training round;
* ``importance`` measures the model on ``train`` (mean |SHAP| over the subsample it draws).

Runs on the runner's event loop on untrusted params: imports nothing heavy, trusts no type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupyter_fed.packages._costs import vertical_costs
from jupyter_fed.privacy.accounting import PrivacyCost

__all__ = ["privacy_cost"]


def privacy_cost(step: str, params: Any, facts: Mapping[str, Any]) -> dict[str, PrivacyCost]:
    """Dataset role → what ``step`` spends (nothing) and whether it trains or measures."""
    p = params if isinstance(params, dict) else {}
    if step == "label":
        solves = not p.get("final")
        measured = (["train"] if solves else []) + (["test"] if p.get("eval") else [])
        return vertical_costs(facts, trains=solves, measured=measured)
    if step == "passive":  # every exchange of a training session (prediction sends none)
        return vertical_costs(facts, trains=p.get("exchange") is not None)
    if step == "importance":
        return vertical_costs(facts, measured=("train",))
    return vertical_costs(facts)
