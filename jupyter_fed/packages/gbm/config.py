"""``model_config`` / ``data_config`` of gbm, in the reference SDK's shape::

    model_config = {"strategy": {"name": "HistGradientBoosting", "params": {}},
                    "model": {"params": {"max_depth": 4, "learning_rate": 0.05,
                                         "random_state": 23, "max_bins": 128,
                                         "sketch_relative_accuracy": 0.001, "max_iter": 100}},
                    "ml_task": {"type": "classification", "params": {}},
                    "save_best_model": {"metric": None, "mode": "min"}}
    data_config = {"predictors": ["x0", "x1"], "target": "y"}

``model.params`` also takes scikit-learn's ``min_samples_leaf``, ``l2_regularization`` and
``early_stopping`` (with ``n_iter_no_change`` and ``tol``), which mean what they mean for
``HistGradientBoostingClassifier``; the validation loss is the federated loss on the clients'
test rows (their training rows when they bring no test set).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages._options import SaveBestModel

__all__ = ["GBMConfig", "GBMData", "TreeParams", "parse"]

MAX_BINS = 255
"""scikit-learn's ceiling (bins are uint8 and one code is kept for missing values)."""
MAX_DEPTH = 12
"""Trees are grown level by level in a dense layout of ``2**(max_depth+1) - 1`` nodes."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TreeParams(_Strict):
    """``model.params``: scikit-learn's ``HistGradientBoosting*`` hyper-parameters."""

    max_depth: int = Field(4, ge=1, le=MAX_DEPTH, description="depth of every tree (levels of "
                           "splits); each level is one exchange with the runners")
    learning_rate: float = Field(0.1, gt=0, le=10, allow_inf_nan=False)
    max_iter: int | None = Field(None, ge=1, le=10_000, description="boosting iterations; the "
                                 "session's num_rounds caps it (default: num_rounds)")
    max_bins: int = Field(255, ge=2, le=MAX_BINS)
    sketch_relative_accuracy: float = Field(0.001, gt=0, lt=0.5, description="relative accuracy "
                                            "of each runner's DDSketch of each predictor")
    min_samples_leaf: int = Field(20, ge=1)
    l2_regularization: float = Field(0.0, ge=0, allow_inf_nan=False)
    early_stopping: bool = Field(False, description="stop when the federated validation loss "
                                 "has not improved by tol in n_iter_no_change iterations")
    n_iter_no_change: int = Field(10, ge=1)
    tol: float = Field(1e-7, ge=0, allow_inf_nan=False)
    random_state: int | None = Field(None, description="the reference's name for seed: when "
                                     "given it seeds the undersampling instead of seed")


class ModelSection(_Strict):
    params: TreeParams = Field(default_factory=TreeParams)


class StrategySection(_Strict):
    name: str = "HistGradientBoosting"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v.lower() not in ("histgradientboosting", "hist_gradient_boosting"):
            raise ValueError("gbm's strategy is HistGradientBoosting")
        return "HistGradientBoosting"


class MLTask(_Strict):
    type: Literal["classification", "regression"] = "classification"
    params: dict[str, Any] = Field(default_factory=dict)


class GBMConfig(_Strict):
    """The gbm ``model_config``.

    ``secure_aggregation``: the gradient histograms are summed under secure aggregation, so the
    coordinator sees only their sum over the clients. ``balance_train_datasets`` (classification)
    undersamples each silo's training rows to its rarest class, drawn afresh every iteration from
    ``seed`` (or ``model.params.random_state``); nothing else in gbm is random.
    """

    experiment_name: str = ""
    experiment_description: str = ""
    strategy: StrategySection = Field(default_factory=StrategySection)
    model: ModelSection = Field(default_factory=ModelSection)
    ml_task: MLTask = Field(default_factory=MLTask)
    balance_train_datasets: bool = False
    seed: int = 0
    save_best_model: SaveBestModel | None = None
    secure_aggregation: bool = False

    @model_validator(mode="after")
    def _balance(self) -> GBMConfig:
        if self.balance_train_datasets and self.ml_task.type != "classification":
            raise ValueError("balance_train_datasets balances classes: it needs ml_task.type "
                             "'classification'")
        return self

    @property
    def params(self) -> TreeParams:
        return self.model.params

    @property
    def classification(self) -> bool:
        return self.ml_task.type == "classification"

    @property
    def draw_seed(self) -> int:
        """The seed of the undersampling: ``random_state`` when given, else ``seed``."""
        rs = self.model.params.random_state
        return int(rs) if rs is not None else int(self.seed)

    def iterations(self, num_rounds: int) -> int:
        """Boosting iterations of a session of ``num_rounds`` rounds (one tree, or one per class,
        each)."""
        cap = self.model.params.max_iter
        return min(cap, num_rounds) if cap is not None else num_rounds


class GBMData(_Strict):
    predictors: list[str] = Field(min_length=1)
    target: str

    @model_validator(mode="after")
    def _target_not_predictor(self) -> GBMData:
        if self.target in self.predictors:
            raise ValueError(f"target {self.target!r} is also listed in predictors")
        if len(set(self.predictors)) != len(self.predictors):
            raise ValueError("predictors lists a column twice")
        return self


def parse(model_config: dict[str, Any] | None, data_config: dict[str, Any] | None
          ) -> tuple[GBMConfig, GBMData]:
    """Validate both configs; a bad field raises ``ConfigError`` naming it."""
    cfg = parse_config(GBMConfig, model_config, "model_config")
    data = parse_config(GBMData, data_config, "data_config")
    if len(data.predictors) > 10_000:
        raise ConfigError("data_config.predictors lists more than 10,000 columns",
                          "gbm histograms grow with the predictors: choose fewer")
    return cfg, data
