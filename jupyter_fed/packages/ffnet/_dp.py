"""Differential privacy for ffnet: what a step costs, and DP-SGD training with opacus.

``privacy_cost`` runs at the runner on untrusted params before any row is read; the runner debits
its result from the ledger. The accounting itself lives in :mod:`jupyter_fed.privacy.accounting`:
delta is capped by the dataset's policy (``1/n²`` by default, never above 1e-5), the noise
multiplier is the smallest for which opacus' RDP accountant, at that delta and for the steps the
configuration implies, stays within the round's epsilon, and that epsilon is what is debited.
``fit`` trains with exactly the granted (epsilon, delta), and withholds the weights if the
training's own accountant reports more. Opacus (and torch) are imported only when a DP step
actually trains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages.ffnet.config import DPParams, FFNetConfig
from jupyter_fed.privacy import dpsgd
from jupyter_fed.privacy.accounting import DatasetFacts, PrivacyCost
from jupyter_fed.privacy.dpsgd import DPReport, RoundPlan

if TYPE_CHECKING:
    from jupyter_fed.packages.base import StepContext




def _bad(field: str, error: str, hint: str) -> ConfigError:
    return ConfigError(f"invalid step params: {field}: {error}", hint,
                       details=[{"field": field, "error": error}])


def _config(params: Any) -> FFNetConfig:
    if not isinstance(params, dict):
        raise _bad("params", "must be an object", "send model_config, data_config and num_rounds")
    model_config = params.get("model_config")
    if not isinstance(model_config, dict):
        raise _bad("model_config", "must be an object", "send the session's model_config")
    return parse_config(FFNetConfig, model_config, "model_config")


def per_round_epsilon(params: Any) -> tuple[DPParams, float] | None:
    """``(dp params, epsilon of one fit step)``, or ``None`` when the session has no DP.

    Validates everything it reads, since ``params`` come from the coordinator, not the custodian.
    """
    dp = _config(params).differential_privacy_params
    if dp is None:
        return None
    epsilon = dpsgd.per_round(dp.epsilon, params.get("num_rounds"))
    return dp, epsilon


def plan_round(params: Any, num_rows: int, cap: float) -> RoundPlan | None:
    """The DP-SGD round ``params`` ask for on ``num_rows`` rows with per-step delta cap ``cap``.

    delta is the session's ``delta / num_rounds`` (basic composition over rounds), but never above
    the cap; the noise multiplier is the smallest that opacus' RDP accountant proves sufficient.
    """
    found = per_round_epsilon(params)
    if found is None:
        return None
    dp, epsilon = found
    cfg = _config(params)
    delta = min(dp.delta / params["num_rounds"], cap)
    return dpsgd.plan_round(epsilon, delta, num_rows, cfg.batch_size, cfg.local_epochs)


def privacy_cost(step: str, params: dict[str, Any], facts: Mapping[str, DatasetFacts]
                 ) -> dict[str, PrivacyCost]:
    """Dataset role → what a step spends, and which rows it measures a model on.

    ``fit``: ``epsilon / num_rounds`` on ``train`` (basic composition over rounds, delta capped
    by the policy), and an evaluation of the incoming model on ``test`` (on ``train`` without a
    test set, unless DP: then nothing is measured on the training rows). Without DP, ``fit``
    also reports the training loss: an evaluation on ``train`` of the model as it trains — a
    model of its own (``party_model``: it depends on the training settings too, and with a
    learning rate of 0 it is the incoming model). ``evaluate``: an evaluation only.
    """
    if step not in ("fit", "evaluate"):
        return {}
    private = per_round_epsilon(params) is not None if step == "fit" else \
        _config(params).differential_privacy_params is not None
    out: dict[str, PrivacyCost] = {}
    if step == "fit" and "train" in facts:
        train = facts["train"]
        plan = plan_round(params, train.num_rows, train.delta_cap) if private else None
        out["train"] = PrivacyCost(plan.epsilon, plan.delta, trains=True) if plan else \
            PrivacyCost(0.0, trains=True, evaluation=True, party_model=True)
    measured = "test" if "test" in facts else ("train" if not private else None)
    if measured is not None and measured in facts:
        out[measured] = (out.get(measured) or PrivacyCost(0.0)) + PrivacyCost(0.0, evaluation=True)
    elif step == "evaluate" and "train" in facts:  # DP without a test set: nothing is measured
        out["train"] = PrivacyCost(0.0, reads=False)
    return out


def granted_round(ctx: StepContext, params: dict[str, Any], num_rows: int) -> RoundPlan:
    """The round the runner debited (``ctx.policy["train"]["grant"]``), on the rows at hand."""
    return dpsgd.granted_plan((ctx.policy.get("train") or {}).get("grant"), num_rows,
                              lambda cap: plan_round(params, num_rows, cap))


def train(ctx: StepContext, net: Any, optimizer: Any, loss_fn: Callable[[Any, Any], Any],
          x: Any, y: Any, *, batch_size: int, epochs: int, dp: DPParams, plan: RoundPlan
          ) -> DPReport:
    """DP-SGD on ``net`` in place with exactly the granted round (see ``privacy.dpsgd``)."""
    return dpsgd.train(ctx.progress, net, optimizer, loss_fn, x, y,
                       max_grad_norm=dp.max_grad_norm, epochs=epochs, plan=plan)
