"""DP-SGD for every package that trains with it (ffnet, glm's SGD solver): plan, then train.

The plan is made at the runner before any row is read: delta is capped by the dataset's policy,
and the noise multiplier is the smallest for which opacus' RDP accountant, for the steps the
configuration implies, stays within the round's epsilon — what the ledger debits. Training then
runs exactly those noisy steps (Poisson batches, per-example clipping, Gaussian noise from
OS-seeded generators) and withholds the weights if its own accountant reports more. Opacus and
torch are imported only when a step trains.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.privacy.accounting import (
    MAX_NOISE_MULTIPLIER,
    dp_sgd_noise_multiplier,
    dp_sgd_schedule,
)

__all__ = ["MAX_ROUNDS", "TOLERANCE", "DPReport", "RoundPlan", "granted_plan", "per_round",
           "plan_round", "train"]

MAX_ROUNDS = 100_000
"""The coordinator's own limit on ``num_rounds``."""

TOLERANCE = 1e-6
"""How far the accountant's epsilon may exceed the debited one (float noise only)."""


@dataclass(frozen=True)
class RoundPlan:
    """One DP-SGD round: what it spends and the noise that makes it so."""

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int


def per_round(epsilon: float, num_rounds: Any) -> float:
    """A session's epsilon split evenly over its rounds (basic composition), validated: the
    rounds come from the coordinator, not the custodian."""
    import math

    if isinstance(num_rounds, bool) or not isinstance(num_rounds, int) or \
            not 1 <= num_rounds <= MAX_ROUNDS:
        raise ConfigError(f"invalid step params: num_rounds: must be an integer from 1 to "
                          f"{MAX_ROUNDS} when differential_privacy_params is set (got "
                          f"{num_rounds!r})", "the coordinator sends the session's num_rounds "
                          "with every step", details=[{"field": "num_rounds",
                                                       "error": "out of range"}])
    out = epsilon / num_rounds
    if not (math.isfinite(out) and out > 0):
        raise ConfigError("invalid step params: model_config.differential_privacy_params.epsilon: "
                          "gives no positive per-round epsilon",
                          "use a larger epsilon or fewer rounds",
                          details=[{"field": "model_config.differential_privacy_params.epsilon",
                                    "error": "no positive per-round epsilon"}])
    return out


def granted_plan(grant: Any, num_rows: int, plan: Callable[[float], RoundPlan | None]
                 ) -> RoundPlan:
    """The round the runner debited (a role's ``grant``), planned on the rows the step has.

    ``plan(cap)`` plans a round under per-step delta cap ``cap``; outside a runner (no grant) the
    default cap of those rows applies. Never plans more epsilon than was debited.
    """
    from jupyter_fed.privacy.accounting import delta_cap

    cap = float(grant["delta"]) if grant and grant.get("delta") else delta_cap(num_rows)
    found = plan(cap)
    if found is None:  # unreachable: the caller saw differential_privacy_params
        raise RuntimeError("differential_privacy_params vanished between parse and training")
    if grant is not None and found.epsilon > float(grant["epsilon"]) * (1 + 1e-9):
        raise RuntimeError("the step would spend more epsilon than the runner debited")
    return found


def plan_round(epsilon: float, delta: float, num_rows: int, batch_size: int, epochs: int
               ) -> RoundPlan:
    """The round that spends ``(epsilon, delta)`` over ``epochs`` epochs of ``num_rows`` rows."""
    sample_rate, steps = dp_sgd_schedule(num_rows, batch_size, epochs)
    try:
        sigma = dp_sgd_noise_multiplier(epsilon, sample_rate, steps, delta)
    except ValueError:
        raise ConfigError(f"differential privacy: opacus cannot reach epsilon {epsilon:g} per "
                          f"round with delta {delta:g} in {epochs} epoch(s) over {num_rows} rows "
                          f"(it would need a noise multiplier above {MAX_NOISE_MULTIPLIER:g})",
                          "raise epsilon, or lower num_rounds or local_epochs") from None
    return RoundPlan(epsilon, delta, sigma, sample_rate, steps)


@dataclass
class DPReport:
    epsilon_spent: float
    epsilon_budgeted: float
    delta: float
    noise_multiplier: float
    steps: int

    def as_dict(self) -> dict[str, float]:
        return {"epsilon_spent": self.epsilon_spent, "epsilon_budgeted": self.epsilon_budgeted,
                "delta": self.delta, "noise_multiplier": self.noise_multiplier,
                "steps": self.steps}


def _quiet_opacus() -> None:
    """Silence opacus warnings that do not apply here (set once; filters are process-wide, and
    ``warnings.catch_warnings`` is not safe in worker threads)."""
    import warnings

    # Its "secure RNG" is torchcsprng; the generators here are seeded from the OS instead.
    warnings.filterwarnings("ignore", message="Secure RNG turned off", category=UserWarning)
    # RDP order range notes: the bound stays valid, only possibly looser.
    warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
    # The network's inputs need no gradient; opacus' hooks only read the module outputs' ones.
    warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are "
                            "computed with respect to module outputs", category=UserWarning)


def _fresh_generator() -> Any:
    """A generator seeded from the OS, never from the (public) config seed: noise or batches a
    model builder could replay would void the guarantee."""
    import torch

    return torch.Generator().manual_seed(secrets.randbits(63))


def train(progress: Callable[[float, str], None], net: Any, optimizer: Any,
          loss_fn: Callable[[Any, Any], Any], x: Any, y: Any, *, max_grad_norm: float,
          epochs: int, plan: RoundPlan, after_step: Callable[[], None] | None = None) -> DPReport:
    """DP-SGD on ``net`` in place, spending at most ``(plan.epsilon, plan.delta)``.

    ``loss_fn`` returns one loss per example (``reduction="none"``); the batch mean is taken here,
    so no example's gradient depends on another's. ``after_step`` (e.g. a penalty's proximal
    step) runs after every noisy step and may read only the weights (post-processing).
    """
    import torch
    from opacus import PrivacyEngine
    from opacus.data_loader import DPDataLoader

    _quiet_opacus()
    loader = DPDataLoader(torch.utils.data.TensorDataset(x, y), sample_rate=plan.sample_rate,
                          generator=_fresh_generator())
    engine = PrivacyEngine(accountant="rdp")  # the accountant the debit was computed with
    net.train()  # opacus insists; the incoming model was just evaluated
    module, dp_opt, loader = engine.make_private(
        module=net, optimizer=optimizer, data_loader=loader, noise_multiplier=plan.noise_multiplier,
        max_grad_norm=max_grad_norm, poisson_sampling=False,  # the loader draws Poisson batches
        noise_generator=_fresh_generator())
    total, done = max(1, epochs * len(loader)), 0
    module.train()
    for epoch in range(epochs):
        for xb, yb in loader:
            if done >= plan.steps:  # never more noisy steps than were accounted for
                break
            dp_opt.zero_grad(set_to_none=True)
            # An empty Poisson batch gives zero (not NaN) gradients and still takes its
            # pure-noise step, as the accountant assumes.
            loss_fn(module(xb), yb).sum().div(max(len(yb), 1)).backward()
            dp_opt.step()
            if after_step is not None:
                after_step()
            done += 1
            if done % 50 == 0:
                progress(done / total, f"epoch {epoch + 1}/{epochs} (DP-SGD)")
    module._close()  # detach opacus' hooks; ``net`` keeps the trained weights under its own names
    spent = float(engine.get_epsilon(plan.delta)) if done else 0.0
    report = DPReport(spent, plan.epsilon, plan.delta, float(plan.noise_multiplier), done)
    if not spent <= plan.epsilon + TOLERANCE:
        raise RuntimeError(f"DP-SGD spent epsilon {spent:.6g}, more than the {plan.epsilon:.6g} "
                           "debited; the weights are withheld")
    return report
