"""Differential privacy for glm's SGD solver: what a step costs, and DP-SGD with opacus.

As in ffnet: ``privacy_cost`` runs at the runner on untrusted params before any row is read and
the runner debits its result; ``train`` then runs DP-SGD with exactly that epsilon as opacus'
target (Poisson batches, per-example clipping, Gaussian noise, RDP accounting), with noise and
batches drawn from OS-seeded generators. Newton steps release exact sums and cost nothing here —
so a dataset whose policy requires differential privacy refuses them.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages.ffnet.config import DPParams
from jupyter_fed.packages.glm.config import GLMConfig

if TYPE_CHECKING:
    from jupyter_fed.packages.base import StepContext

MAX_ROUNDS = 100_000
TOLERANCE = 1e-6


def per_round_epsilon(params: Any) -> tuple[DPParams, float] | None:
    """``(dp params with delta split over rounds, epsilon of one fit step)``, or ``None``."""
    if not isinstance(params, dict) or not isinstance(params.get("model_config"), dict):
        raise ConfigError("invalid step params: model_config: must be an object", "",
                          details=[{"field": "model_config", "error": "must be an object"}])
    dp = parse_config(GLMConfig, params["model_config"], "model_config").differential_privacy_params
    if dp is None:
        return None
    rounds = params.get("num_rounds")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise ConfigError(f"invalid step params: num_rounds must be an integer from 1 to "
                          f"{MAX_ROUNDS} under differential privacy (got {rounds!r})", "",
                          details=[{"field": "num_rounds", "error": "out of range"}])
    epsilon = dp.epsilon / rounds
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError("model_config.differential_privacy_params.epsilon gives no positive "
                          "per-round epsilon", "use a larger epsilon or fewer rounds")
    return dp.model_copy(update={"delta": dp.delta / rounds}), epsilon


def privacy_cost(step: str, params: dict[str, Any]) -> dict[str, float]:
    """Dataset role → epsilon: ``epsilon / num_rounds`` on ``train`` per DP ``fit`` step (basic
    composition over the rounds); every other step, and every step without DP, costs nothing."""
    if step != "fit":
        return {}
    found = per_round_epsilon(params)
    return {} if found is None else {"train": found[1]}


def _generator() -> Any:
    import torch

    return torch.Generator().manual_seed(secrets.randbits(63))


def train(ctx: StepContext, net: Any, optimizer: Any, loss_fn: Callable[[Any, Any], Any],
          x: Any, y: Any, *, batch_size: int, epochs: int, dp: DPParams, epsilon: float,
          after_step: Callable[[], None]) -> dict[str, float]:
    """DP-SGD on ``net`` in place, spending at most ``(epsilon, delta)``; returns the report.

    ``loss_fn`` returns one loss per example; ``after_step`` (the penalty's proximal step) runs
    after every noisy step and reads only the weights.
    """
    import warnings

    import torch
    from opacus import PrivacyEngine
    from opacus.data_loader import DPDataLoader

    warnings.filterwarnings("ignore", message="Secure RNG turned off", category=UserWarning)
    warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
    warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
    n = len(y)
    steps = max(1, -(-n // batch_size))
    loader = DPDataLoader(torch.utils.data.TensorDataset(x, y), sample_rate=1 / steps,
                          generator=_generator())
    engine = PrivacyEngine(accountant="rdp")
    net.train()
    try:
        module, dp_opt, loader = engine.make_private_with_epsilon(
            module=net, optimizer=optimizer, data_loader=loader, target_epsilon=epsilon,
            target_delta=dp.delta, epochs=epochs, max_grad_norm=dp.max_grad_norm,
            poisson_sampling=False, noise_generator=_generator())
    except ValueError as exc:
        raise ConfigError(f"differential privacy: opacus cannot reach epsilon {epsilon:g} per "
                          f"round with delta {dp.delta:g} in {epochs} epoch(s) over {n} rows "
                          f"({exc})", "raise epsilon, or lower num_rounds or local_epochs") from None
    done = 0
    for epoch in range(epochs):
        for xb, yb in loader:
            dp_opt.zero_grad(set_to_none=True)
            loss_fn(module(xb), yb).sum().div(max(len(yb), 1)).backward()
            dp_opt.step()
            after_step()
            done += 1
            if done % 50 == 0:
                ctx.progress(done / (epochs * len(loader)), f"epoch {epoch + 1}/{epochs} (DP-SGD)")
    module._close()
    spent = float(engine.get_epsilon(dp.delta))
    if not spent <= epsilon + TOLERANCE:
        raise RuntimeError(f"DP-SGD spent epsilon {spent:.6g}, more than the {epsilon:.6g} "
                           "debited; the weights are withheld")
    return {"epsilon_spent": spent, "epsilon_budgeted": epsilon, "delta": dp.delta,
            "noise_multiplier": float(dp_opt.noise_multiplier), "steps": done}
