"""``model_config`` / ``data_config`` of glm, in the reference SDK's shape::

    model_config = {"strategy": {"name": "FedAvg", "params": {}},
                    "model": {"params": {"input_size": 15}},
                    "ml_task": {"type": "logistic", "params": {"alpha": 0.0, "l1_ratio": 0.0}},
                    "optimizer": {"name": "SGD", "params": {"learning_rate": 0.2}},
                    "differential_privacy_params": {"epsilon": 4, "max_grad_norm": 7}}
    data_config = {"predictors": ["x0", "x1"], "target": "y"}

The penalty is scikit-learn's on the mean deviance: minimise ``D(β) / (2n) + alpha * l1_ratio *
‖w‖₁ + alpha * (1 - l1_ratio) / 2 * ‖w‖²`` (intercept not penalised), so ``alpha`` means what it
means for ``PoissonRegressor`` and ``ElasticNet``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages._secure import secure_conflict
from jupyter_fed.packages.ffnet.config import DPParams, Optimizer, SaveBestModel, StrategySection

__all__ = ["ALLOWED_LINKS", "DEFAULT_LINK", "GLMConfig", "GLMData", "parse"]

Family = Literal["normal", "logistic", "poisson", "gamma", "inverse_gaussian"]

DEFAULT_LINK = {"normal": "identity", "logistic": "logit", "poisson": "log", "gamma": "log",
                "inverse_gaussian": "log"}
ALLOWED_LINKS = {"normal": ("identity", "log"), "logistic": ("logit",),
                 "poisson": ("log", "identity", "sqrt"), "gamma": ("log", "inverse", "identity"),
                 "inverse_gaussian": ("log", "inverse_squared", "inverse", "identity")}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskParams(_Strict):
    alpha: float = Field(0.0, ge=0, allow_inf_nan=False)
    l1_ratio: float = Field(0.0, ge=0, le=1)
    link: str | None = None


class MLTask(_Strict):
    type: Family = "logistic"
    params: TaskParams = Field(default_factory=TaskParams)

    @model_validator(mode="after")
    def _link(self) -> MLTask:
        if self.params.link is not None and self.params.link not in ALLOWED_LINKS[self.type]:
            raise ValueError(f"params.link {self.params.link!r} is not available for "
                             f"{self.type}; use one of {', '.join(ALLOWED_LINKS[self.type])}")
        return self

    @property
    def link(self) -> str:
        return self.params.link or DEFAULT_LINK[self.type]


class NetParams(_Strict):
    input_size: int | None = Field(None, gt=0)
    output_activation: str | None = Field(None, description="accepted for the reference's "
                                          "configs; the family's link decides it")


class ModelSection(_Strict):
    params: NetParams = Field(default_factory=NetParams)


class GLMConfig(_Strict):
    """The glm ``model_config``.

    ``solver``: ``"newton"`` (federated IRLS: exact pooled maximum likelihood, ``num_rounds`` a
    maximum) or ``"sgd"`` (FedAvg rounds of a one-layer network, the reference's behaviour). The
    default is Newton unless differential privacy or an L1 penalty asks for SGD. ``tol`` is the
    Newton stopping rule of statsmodels' GLM: the (penalised) deviance changed by less than ``tol``.
    """

    experiment_name: str = ""
    experiment_description: str = ""
    strategy: StrategySection = Field(default_factory=StrategySection)
    model: ModelSection = Field(default_factory=ModelSection)
    ml_task: MLTask = Field(default_factory=MLTask)
    solver: Literal["newton", "sgd"] | None = None
    tol: float = Field(1e-8, gt=0, lt=1)
    optimizer: Optimizer = Field(default_factory=Optimizer)
    local_epochs: int = Field(1, ge=1, le=1000)
    batch_size: int = Field(64, ge=1)
    balance_train_datasets: bool = Field(False, description="SGD, logistic family: undersample "
                                         "each silo's training rows to its rarest class, drawn "
                                         "afresh every round from seed")
    seed: int = 0
    save_best_model: SaveBestModel | None = None
    differential_privacy_params: DPParams | None = None
    normalize: bool | None = Field(None, description="SGD only: standardise predictors with their "
                                   "exact federated moments (default: on, except under DP)")
    secure_aggregation: bool = Field(False, description="the coordinator gets only sums over the "
                                     "clients (SGD updates, Newton's gradients and Hessians, "
                                     "moments, deviances), masked by the runners (SecAgg); "
                                     "robust strategies and clip_norm are refused with it")

    @field_validator("solver", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _solver(self) -> GLMConfig:
        if self.solver == "newton" and self.differential_privacy_params is not None:
            raise ValueError("solver 'newton' releases exact gradients and Hessians, which "
                             "differential_privacy_params cannot cover; use solver 'sgd'")
        if self.solver == "newton" and self.l1 > 0:
            raise ValueError("solver 'newton' has no L1 penalty (ml_task.params.l1_ratio > 0); "
                             "use solver 'sgd'")
        conflict = self.secure_aggregation and secure_conflict(self.strategy.model_dump())
        if conflict:
            raise ValueError(conflict)
        if self.balance_train_datasets:
            if self.solver == "newton":
                raise ValueError("balance_train_datasets undersamples each round's rows, which "
                                 "the exact newton solver does not do; use solver 'sgd'")
            if self.ml_task.type != "logistic":
                raise ValueError("balance_train_datasets balances classes: it needs ml_task.type "
                                 "'logistic'")
            if self.differential_privacy_params is not None:
                # rows chosen by their labels: a data-dependent selection DP-SGD does not cover
                raise ValueError("balance_train_datasets cannot be combined with "
                                 "differential_privacy_params")
        return self

    @property
    def l1(self) -> float:
        return self.ml_task.params.alpha * self.ml_task.params.l1_ratio

    @property
    def l2(self) -> float:
        return self.ml_task.params.alpha * (1.0 - self.ml_task.params.l1_ratio)

    @property
    def resolved_solver(self) -> str:
        if self.solver is not None:
            return self.solver
        return "sgd" if self.differential_privacy_params is not None or self.l1 > 0 or \
            self.balance_train_datasets else "newton"

    @property
    def standardize(self) -> bool:
        if self.normalize is not None:
            return self.normalize
        return self.differential_privacy_params is None


class GLMData(_Strict):
    predictors: list[str] = Field(min_length=1)
    target: str

    @model_validator(mode="after")
    def _target_not_predictor(self) -> GLMData:
        if self.target in self.predictors:
            raise ValueError(f"target {self.target!r} is also listed in predictors")
        return self


def parse(model_config: dict[str, Any] | None, data_config: dict[str, Any] | None
          ) -> tuple[GLMConfig, GLMData]:
    """Validate both configs and their agreement (``input_size`` == number of predictors)."""
    cfg = parse_config(GLMConfig, model_config, "model_config")
    data = parse_config(GLMData, data_config, "data_config")
    size = cfg.model.params.input_size
    if size is not None and size != len(data.predictors):
        from jupyter_fed.errors import ConfigError

        raise ConfigError(f"model_config.model.params.input_size is {size} but data_config lists "
                          f"{len(data.predictors)} predictors", "set input_size to the number of "
                          "predictors (or leave it out)",
                          details=[{"field": "model_config.model.params.input_size",
                                    "error": "does not match the number of predictors"}])
    return cfg, data
