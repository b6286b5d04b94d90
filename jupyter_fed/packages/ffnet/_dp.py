"""Differential privacy for ffnet: what a step costs, and DP-SGD training with opacus.

``privacy_cost`` runs at the runner on untrusted params before any row is read; the runner debits
its result from the ledger. ``fit`` then trains with exactly that epsilon as opacus' target, so the
charge and the spend come from one computation. Opacus (and torch) are imported only when a DP
step actually trains.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages.ffnet.config import DPParams, FFNetConfig

if TYPE_CHECKING:
    from jupyter_fed.packages.base import StepContext

MAX_ROUNDS = 100_000
"""The coordinator's own limit on ``num_rounds``."""

TOLERANCE = 1e-6
"""How far the accountant's epsilon may exceed the debited one (float noise only)."""


def _bad(field: str, error: str, hint: str) -> ConfigError:
    return ConfigError(f"invalid step params: {field}: {error}", hint,
                       details=[{"field": field, "error": error}])


def per_round_epsilon(params: Any) -> tuple[DPParams, float] | None:
    """``(dp params, epsilon of one fit step)``, or ``None`` when the session has no DP.

    Validates everything it reads, since ``params`` come from the coordinator, not the custodian.
    """
    if not isinstance(params, dict):
        raise _bad("params", "must be an object", "send model_config, data_config and num_rounds")
    model_config = params.get("model_config")
    if not isinstance(model_config, dict):
        raise _bad("model_config", "must be an object", "send the session's model_config")
    cfg = parse_config(FFNetConfig, model_config, "model_config")
    dp = cfg.differential_privacy_params
    if dp is None:
        return None
    rounds = params.get("num_rounds")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise _bad("num_rounds", f"must be an integer from 1 to {MAX_ROUNDS} when "
                   f"differential_privacy_params is set (got {rounds!r})",
                   "the coordinator sends the session's num_rounds with every step")
    epsilon = dp.epsilon / rounds
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise _bad("model_config.differential_privacy_params.epsilon",
                   "gives no positive per-round epsilon", "use a larger epsilon or fewer rounds")
    # delta is split like epsilon, so by basic composition the whole session is exactly
    # (epsilon, delta)-DP as configured, not (epsilon, rounds x delta).
    return dp.model_copy(update={"delta": dp.delta / rounds}), epsilon


def privacy_cost(step: str, params: dict[str, Any]) -> dict[str, float]:
    """Dataset role → epsilon a step spends: ``epsilon / num_rounds`` on ``train`` per ``fit``.

    Basic composition over rounds: a session of ``num_rounds`` fit steps, each
    ``(epsilon / num_rounds, delta / num_rounds)``-DP, is ``(epsilon, delta)``-DP in total on each
    training dataset. ``evaluate`` and sessions without DP cost nothing.
    """
    if step != "fit":
        return {}
    found = per_round_epsilon(params)
    return {} if found is None else {"train": found[1]}


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
    ``warnings.catch_warnings`` is not safe in the runner's worker threads)."""
    import warnings

    # Its "secure RNG" is torchcsprng; the generators here are seeded from the OS instead.
    warnings.filterwarnings("ignore", message="Secure RNG turned off", category=UserWarning)
    # RDP order range notes: the bound stays valid, only possibly looser.
    warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
    # The network's inputs need no gradient; opacus' hooks only read the module outputs' ones.
    warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are "
                            "computed with respect to module outputs", category=UserWarning)


def _fresh_generator() -> Any:
    """A generator seeded from the OS, never from the (public) config seed.

    Noise or batch choices a model builder could replay would void the guarantee; torch's default
    generator starts from a fixed seed in every new process, so it is not used either.
    """
    import torch

    return torch.Generator().manual_seed(secrets.randbits(63))


def train(ctx: StepContext, net: Any, optimizer: Any, loss_fn: Callable[[Any, Any], Any],
          x: Any, y: Any, *, batch_size: int, epochs: int, dp: DPParams, epsilon: float
          ) -> DPReport:
    """DP-SGD on ``net`` in place: Poisson batches of expected size ``batch_size``, per-example
    gradients clipped to ``max_grad_norm`` and Gaussian noise calibrated so that ``epochs`` epochs
    spend at most ``(epsilon, delta)``.

    ``loss_fn`` must return one loss per example (``reduction="none"``); the mean over the batch
    is taken here, so no example's gradient depends on another's (a class-weighted "mean" would
    divide by the batch's total weight, which does).
    """
    import torch
    from opacus import PrivacyEngine
    from opacus.data_loader import DPDataLoader
    from opacus.validators.errors import UnsupportedError

    _quiet_opacus()
    n = len(y)
    steps_per_epoch = max(1, -(-n // batch_size))
    loader = DPDataLoader(torch.utils.data.TensorDataset(x, y), sample_rate=1 / steps_per_epoch,
                          generator=_fresh_generator())
    # RDP accounting: a valid upper bound, computed in well under a second for any epsilon; the
    # tighter PRV accountant takes seconds per step and does not terminate for large epsilons.
    engine = PrivacyEngine(accountant="rdp")
    net.train()  # opacus insists; the incoming model was just evaluated
    try:
        module, dp_opt, loader = engine.make_private_with_epsilon(
            module=net, optimizer=optimizer, data_loader=loader, target_epsilon=epsilon,
            target_delta=dp.delta, epochs=epochs, max_grad_norm=dp.max_grad_norm,
            poisson_sampling=False,  # the loader above already draws Poisson batches
            noise_generator=_fresh_generator())
    except UnsupportedError:
        raise
    except ValueError as exc:  # opacus: "The privacy budget is too low."
        raise ConfigError(f"differential privacy: opacus cannot reach epsilon {epsilon:g} per "
                          f"round with delta {dp.delta:g} in {epochs} epoch(s) over {n} rows "
                          f"({exc})", "raise epsilon, or lower num_rounds or local_epochs"
                          ) from None
    total, done = epochs * len(loader), 0
    module.train()
    for epoch in range(epochs):
        for xb, yb in loader:
            dp_opt.zero_grad(set_to_none=True)
            # The batch mean, written so that an empty Poisson batch gives zero (not NaN)
            # gradients and still takes its pure-noise step, as the accountant assumes.
            loss_fn(module(xb), yb).sum().div(max(len(yb), 1)).backward()
            dp_opt.step()
            done += 1
            if done % 50 == 0:
                ctx.progress(done / total, f"epoch {epoch + 1}/{epochs} (DP-SGD)")
    module._close()  # detach opacus' hooks; ``net`` keeps the trained weights under its own names
    spent = float(engine.get_epsilon(dp.delta))
    report = DPReport(spent, epsilon, dp.delta, float(dp_opt.noise_multiplier), done)
    if not spent <= epsilon + TOLERANCE:
        raise RuntimeError(f"DP-SGD spent epsilon {spent:.6g}, more than the {epsilon:.6g} debited; "
                           "the weights are withheld")
    return report
