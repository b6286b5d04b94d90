"""``model_config`` / ``data_config`` of the ffnet package, in the reference SDK's shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages._options import SaveBestModel
from jupyter_fed.packages._secure import secure_conflict

__all__ = ["DPParams", "FFNetConfig", "FFNetData", "Optimizer", "SaveBestModel", "StrategySection",
           "parse"]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "selu", "silu")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetParams(_Strict):
    input_size: int = Field(gt=0)
    hidden_layer_sizes: list[int] = Field(default_factory=lambda: [6, 6, 6])
    output_size: int = Field(gt=0)
    activation: str = "relu"

    @field_validator("hidden_layer_sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if any(s <= 0 for s in v):
            raise ValueError("every hidden layer size must be a positive integer")
        return v

    @field_validator("activation")
    @classmethod
    def _act(cls, v: str) -> str:
        if v.lower() not in ACTIVATIONS:
            raise ValueError(f"must be one of {', '.join(ACTIVATIONS)}")
        return v.lower()


class ModelSection(_Strict):
    params: NetParams


class MLTask(_Strict):
    type: Literal["classification", "regression"] = "classification"
    params: dict[str, Any] = Field(default_factory=dict)


class Optimizer(_Strict):
    name: str = "SGD"
    params: dict[str, Any] = Field(default_factory=lambda: {"learning_rate": 0.2, "momentum": 0.0})

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        known = ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam")
        match = next((k for k in known if k.lower() == v.lower()), None)
        if match is None:
            raise ValueError(f"must be a PyTorch optimizer name: {', '.join(known)}")
        return match


class StrategySection(_Strict):
    name: str = "FedAvg"
    params: dict[str, Any] = Field(default_factory=dict)


class DPParams(_Strict):
    """DP-SGD at every silo (opacus): Poisson sampling, per-example clipping, Gaussian noise.

    ``epsilon`` is the session total on each training dataset, split evenly over the rounds
    (basic composition); so is ``delta``, capped per round by the runner's policy.
    """

    epsilon: float = Field(gt=0, le=1000, allow_inf_nan=False)
    max_grad_norm: float = Field(gt=0, le=1000, allow_inf_nan=False, description="per-example "
                                 "gradient clipping norm; above 1000 float32 noise of "
                                 "noise_multiplier × max_grad_norm loses the gradient")
    delta: float = Field(1e-5, gt=0, lt=1, description="session total; each round spends "
                         "delta / num_rounds, never more than the dataset's cap (1/n² by "
                         "default, at most 1e-5)")


class FFNetConfig(_Strict):
    """The ffnet ``model_config``; field names follow the reference SDK."""

    experiment_name: str = ""
    experiment_description: str = ""
    strategy: StrategySection = Field(default_factory=StrategySection)
    model: ModelSection
    ml_task: MLTask = Field(default_factory=MLTask)
    optimizer: Optimizer = Field(default_factory=Optimizer)
    balance_train_datasets: bool = False
    local_epochs: int = Field(1, ge=1, le=1000)
    batch_size: int = Field(64, ge=1)
    seed: int = 0
    save_best_model: SaveBestModel | None = None
    differential_privacy_params: DPParams | None = None
    normalize: bool | None = Field(None, description="standardise every predictor with the "
                                   "federated mean and standard deviation of the training rows "
                                   "(computed exactly across silos before round 1 and stored in "
                                   "the model, so it takes raw features); default: on, except "
                                   "with differential_privacy_params (exact moments are not DP)")
    secure_aggregation: bool = Field(False, description="the coordinator gets only the sum of "
                                     "the clients' updates (and moments), masked by the runners "
                                     "(SecAgg); robust strategies and clip_norm need individual "
                                     "updates and are refused with it")

    @property
    def standardize(self) -> bool:
        """Whether the network starts with a standardisation layer (``normalize`` resolved)."""
        if self.normalize is not None:
            return self.normalize
        return self.differential_privacy_params is None

    @model_validator(mode="after")
    def _task_vs_output(self) -> FFNetConfig:
        if self.ml_task.type == "classification" and self.model.params.output_size < 2:
            raise ValueError("model.params.output_size must be >= 2 for classification "
                             "(one output per class)")
        if self.differential_privacy_params is not None and self.balance_train_datasets:
            # Undersampling to the rarest class picks rows by a data-dependent rule, which the
            # DP-SGD accounting does not cover.
            raise ValueError("balance_train_datasets cannot be combined with "
                             "differential_privacy_params; use ml_task.params.loss_weights")
        conflict = self.secure_aggregation and secure_conflict(self.strategy.model_dump())
        if conflict:
            raise ValueError(conflict)
        return self


class FFNetData(_Strict):
    predictors: list[str] = Field(min_length=1)
    target: str

    @model_validator(mode="after")
    def _target_not_predictor(self) -> FFNetData:
        if self.target in self.predictors:
            raise ValueError(f"target {self.target!r} is also listed in predictors")
        return self


def parse(model_config: dict[str, Any] | None, data_config: dict[str, Any] | None
          ) -> tuple[FFNetConfig, FFNetData]:
    """Validate both configs and their agreement (``input_size`` == number of predictors)."""
    cfg = parse_config(FFNetConfig, model_config, "model_config")
    data = parse_config(FFNetData, data_config, "data_config")
    if cfg.model.params.input_size != len(data.predictors):
        from jupyter_fed.errors import ConfigError

        raise ConfigError(
            f"model_config.model.params.input_size is {cfg.model.params.input_size} but "
            f"data_config lists {len(data.predictors)} predictors",
            "set input_size to the number of predictors",
            details=[{"field": "model_config.model.params.input_size",
                      "error": "does not match the number of predictors"}])
    return cfg, data
