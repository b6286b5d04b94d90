"""Parameter models of every strategy, and their translation into ``ConfigError``.

Each strategy validates its keyword parameters with one pydantic model (``extra="forbid"``, strict
types, finite numbers) so that a typo such as ``trim_raito`` or a string ``"0.1"`` fails when the
session is configured, not rounds later in the coordinator. Cross-field rules (a parameter that only
makes sense for one aggregation rule) are field validators, so the error names the offending field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from jupyter_fed.errors import ConfigError

AGGREGATIONS: tuple[str, ...] = ("mean", "median", "trimmed_mean", "krum", "multi_krum")
"""Canonical names of the aggregation rules, as accepted by ``params["aggregation"]``."""

_AGGREGATION_ALIASES = {"mean": "mean", "weightedmean": "mean", "median": "median",
                        "trimmedmean": "trimmed_mean", "krum": "krum", "multikrum": "multi_krum"}

P = TypeVar("P", bound=BaseModel)


def fold_name(name: str) -> str:
    """Lower-case ``name`` and drop ``_``, ``-`` and spaces, so that spellings compare equal."""
    return "".join(ch for ch in name.lower() if ch not in "_- ")


def normalize_aggregation(name: str) -> str | None:
    """Canonical aggregation name for ``name`` (any case, ``-`` or ``_``), or None if unknown."""
    return _AGGREGATION_ALIASES.get(fold_name(name))


def _only_with(info: ValidationInfo, rules: tuple[str, ...]) -> None:
    rule = info.data.get("aggregation")
    if rule is not None and rule not in rules:  # None: aggregation itself was invalid
        allowed = " or ".join(repr(r) for r in rules)
        raise ValueError(f"only used with aggregation {allowed}, not {rule!r}; remove it")


class StrategyParams(BaseModel):
    """Common base: unknown keys, wrong types and NaN/Inf are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class AggregationParams(StrategyParams):
    """How client updates are combined; shared by every strategy.

    Attributes
    ----------
    aggregation
        ``mean`` (example-weighted, the default), ``median`` (coordinate-wise), ``trimmed_mean``,
        ``krum`` or ``multi_krum``. The robust rules bound what a few malicious or broken clients can
        do to the global model, at the price of some statistical efficiency.
    trim_ratio
        ``trimmed_mean`` only: fraction cut from each end per coordinate, ``0 <= trim_ratio < 0.5``.
    num_byzantine
        ``krum``/``multi_krum`` only: number of faulty clients ``f`` to tolerate; a round then needs
        more than ``2f + 2`` updates.
    num_selected
        ``multi_krum`` only: how many best-scored updates to average (default ``n - f``).
    clip_norm
        If set, each client's update (its weights minus the global weights) is scaled down to this
        L2 norm over all parameters before any aggregation rule, so no single client can move the
        model further than ``clip_norm``.
    """

    aggregation: str = "mean"
    trim_ratio: float = Field(0.2, ge=0.0, lt=0.5)
    num_byzantine: int = Field(0, ge=0)
    num_selected: int | None = Field(None, ge=1)
    clip_norm: float | None = Field(None, gt=0.0)

    @field_validator("aggregation")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        rule = normalize_aggregation(value)
        if rule is None:
            raise ValueError(f"must be one of: {', '.join(AGGREGATIONS)}")
        return rule

    @field_validator("trim_ratio")
    @classmethod
    def _trim_rule(cls, value: float, info: ValidationInfo) -> float:
        _only_with(info, ("trimmed_mean",))
        return value

    @field_validator("num_byzantine")
    @classmethod
    def _krum_rule(cls, value: int, info: ValidationInfo) -> int:
        _only_with(info, ("krum", "multi_krum"))
        return value

    @field_validator("num_selected")
    @classmethod
    def _multi_krum_rule(cls, value: int | None, info: ValidationInfo) -> int | None:
        _only_with(info, ("multi_krum",))
        return value


class FedAvgParams(AggregationParams):
    """FedAvg has no parameters beyond the aggregation rule."""


class FedAvgMParams(AggregationParams):
    """Server SGD with momentum (Hsu et al., 2019): ``v = momentum*v + delta; w += lr*v``."""

    server_learning_rate: float = Field(1.0, gt=0.0)
    server_momentum: float = Field(0.9, ge=0.0, lt=1.0)


class AdaptiveParams(AggregationParams):
    """Shared by FedAdam, FedYogi and FedAdagrad: server learning rate, momentum, adaptivity."""

    eta: float = Field(1e-1, gt=0.0)
    eta_l: float = Field(1e-1, gt=0.0)  # client learning rate: accepted for Flower parity, unused
    beta_1: float = Field(0.9, ge=0.0, lt=1.0)
    tau: float = Field(1e-9, gt=0.0)


class FedAdamParams(AdaptiveParams):
    """FedAdam (Reddi et al., 2021); ``bias_correction`` adds Adam's ``sqrt(1-b2^t)/(1-b1^t)``."""

    beta_2: float = Field(0.99, ge=0.0, lt=1.0)
    bias_correction: bool = False


class FedYogiParams(AdaptiveParams):
    """FedYogi (Reddi et al., 2021), with Flower's defaults (``eta=1e-2``, ``tau=1e-3``)."""

    eta: float = Field(1e-2, gt=0.0)
    eta_l: float = Field(0.0316, gt=0.0)
    beta_2: float = Field(0.99, ge=0.0, lt=1.0)
    tau: float = Field(1e-3, gt=0.0)


class FedAdagradParams(AdaptiveParams):
    """FedAdagrad (Reddi et al., 2021); like Flower, no first-moment momentum by default."""

    beta_1: float = Field(0.0, ge=0.0, lt=1.0)


class StrategyConfig(StrategyParams):
    """The ``model_config["strategy"]`` object itself."""

    name: str = "FedAvg"
    params: dict[str, Any] = Field(default_factory=dict)


_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
           "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}


def _reason(err: Mapping[str, Any], model: type[BaseModel]) -> str:
    kind, ctx, msg = err["type"], err.get("ctx") or {}, str(err["msg"])
    if kind == "extra_forbidden":
        what = "parameter" if issubclass(model, AggregationParams) else "key"
        return f"unknown {what} (valid: {', '.join(model.model_fields)})"
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        return f"must be {op} {ctx.get(key)}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return "must be " + msg.removeprefix("Input should be ")
    return msg


def config_error(errors: list[dict[str, str]], what: str, hint: str) -> ConfigError:
    """One ``ConfigError`` whose message lists every ``field: reason`` of ``errors``."""
    lines = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
    return ConfigError(f"invalid {what}: {lines}", hint, details=errors)


def parse_params(model: type[P], data: Mapping[str, Any] | None, what: str,
                 prefix: str = "strategy.params") -> P:
    """Validate ``data`` with ``model``; raise ``ConfigError`` naming ``<prefix>.<field>: reason``.

    Parameters
    ----------
    model
        The pydantic model of the strategy (or of the strategy config object).
    data
        The user's parameters; None means all defaults.
    what
        Words for the message, e.g. ``"parameters of strategy FedAdam"``.
    prefix
        Dotted path of ``data`` inside ``model_config``, so the user finds the field.
    """
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            errors.append({"field": f"{prefix}.{loc}" if loc else prefix,
                           "error": _reason(err, model)})
        raise config_error(errors, what, "fix the field(s) named above in model_config['strategy']"
                           ) from None
