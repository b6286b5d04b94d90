"""Differential privacy for glm: what each step costs at the runner, and DP-SGD via ``privacy``.

``privacy_cost`` runs at the runner on untrusted params before any row is read and the runner
debits its result (see :mod:`jupyter_fed.privacy.accounting`). The SGD solver's ``fit`` under
``differential_privacy_params`` spends ``epsilon / num_rounds`` per round (delta capped by the
dataset's policy) and trains with :mod:`jupyter_fed.privacy.dpsgd`, whose noise is the smallest
opacus' accountant proves enough. Newton and moments steps release exact sums and cost nothing
here — so a dataset whose policy requires differential privacy refuses them. Every step that
measures a model on rows declares it, so the runner can hold evaluations to one per round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages.glm.config import GLMConfig
from jupyter_fed.privacy import dpsgd
from jupyter_fed.privacy.accounting import DatasetFacts, PrivacyCost
from jupyter_fed.privacy.dpsgd import DPReport, RoundPlan

if TYPE_CHECKING:
    from jupyter_fed.packages.base import StepContext

TRAINING = ("newton", "fit")
"""Steps that are a training round of the session (each earns one exact evaluation)."""
MEASURING = ("newton", "fit", "evaluate")
"""Steps that measure the received model on rows (``test``, else ``train`` without DP)."""


def _config(params: Any) -> GLMConfig:
    if not isinstance(params, dict) or not isinstance(params.get("model_config"), dict):
        raise ConfigError("invalid step params: model_config: must be an object", "",
                          details=[{"field": "model_config", "error": "must be an object"}])
    return parse_config(GLMConfig, params["model_config"], "model_config")


def per_round_epsilon(params: Any) -> tuple[Any, float] | None:
    """``(dp params, epsilon of one fit step)``, or ``None`` when the session has no DP."""
    dp = _config(params).differential_privacy_params
    if dp is None:
        return None
    epsilon = dpsgd.per_round(dp.epsilon, params.get("num_rounds"))
    return dp, epsilon


def plan_round(params: Any, num_rows: int, cap: float) -> RoundPlan | None:
    """The DP-SGD round of a ``fit`` step on ``num_rows`` rows with per-step delta cap ``cap``."""
    found = per_round_epsilon(params)
    if found is None:
        return None
    dp, epsilon = found
    cfg = _config(params)
    delta = min(dp.delta / params["num_rounds"], cap)
    return dpsgd.plan_round(epsilon, delta, num_rows, cfg.batch_size, cfg.local_epochs)


def privacy_cost(step: str, params: dict[str, Any], facts: Mapping[str, DatasetFacts]
                 ) -> dict[str, PrivacyCost]:
    """Dataset role → what ``step`` spends, and which rows it measures a model on."""
    private = step == "fit" and per_round_epsilon(params) is not None
    out: dict[str, PrivacyCost] = {}
    if "train" in facts:
        if private:
            train = facts["train"]
            plan = plan_round(params, train.num_rows, train.delta_cap)
            assert plan is not None
            out["train"] = PrivacyCost(plan.epsilon, plan.delta, trains=True)
        elif step == "fit":  # the SGD solver's training loss measures the model on its rows
            out["train"] = PrivacyCost(0.0, trains=True, evaluation=True, party_model=True)
        else:
            out["train"] = PrivacyCost(0.0, trains=step in TRAINING)
    if step in MEASURING:
        dp = _config(params).differential_privacy_params is not None
        measured = "test" if "test" in facts else ("train" if not dp else None)
        if measured is not None:
            out[measured] = (out.get(measured) or PrivacyCost(0.0)) + \
                PrivacyCost(0.0, evaluation=True)
    return out


def granted_round(ctx: StepContext, params: dict[str, Any], num_rows: int) -> RoundPlan:
    """The round the runner debited (``ctx.policy["train"]["grant"]``), on the rows at hand."""
    return dpsgd.granted_plan((ctx.policy.get("train") or {}).get("grant"), num_rows,
                              lambda cap: plan_round(params, num_rows, cap))


def train(ctx: StepContext, net: Any, optimizer: Any, loss_fn: Callable[[Any, Any], Any],
          x: Any, y: Any, *, max_grad_norm: float, epochs: int, plan: RoundPlan,
          after_step: Callable[[], None]) -> DPReport:
    """DP-SGD with the granted round; ``after_step`` is the penalty's proximal step."""
    return dpsgd.train(ctx.progress, net, optimizer, loss_fn, x, y, max_grad_norm=max_grad_norm,
                       epochs=epochs, plan=plan, after_step=after_step)
