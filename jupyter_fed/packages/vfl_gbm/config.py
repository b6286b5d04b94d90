"""``model_config`` / ``data_config`` / task options of vfl_gbm, in the reference SDK's shape::

    model_config = {
        "strategy": {"name": "VflGbm", "params": {}},
        "model": {"params": {"max_depth": 3, "learning_rate": 0.1, "max_bins": 32,
                             "max_iter": 20, "min_samples_leaf": 20, "l2_regularization": 0.0}},
        "ml_task": {"type": "classification", "params": {}},
        "seed": 23,
    }
    data_config = {
        "passive_client": {"label_client": False, "predictors": ["x1", "x3"], "target": None},
        "active_client": {"label_client": True, "predictors": ["x0", "x2"], "target": "y"},
    }

``model.params`` takes the tree hyper-parameters of gbm (:class:`~jupyter_fed.packages.gbm.config.
TreeParams`) that mean something here; the sketch and early-stopping fields of HFL gbm are
refused by name (each party bins its own columns exactly, and early stopping is not implemented).
``key_bits`` (ours) is the Paillier modulus size of the label party's key: 2048 by default;
1024 is accepted for tests and benchmarks only (about 80-bit security — see the README).
``influence_score`` (on by default; needs a test dataset) and ``feature_importance_score`` (off)
are the sections splitnn and vfl_glm take (:mod:`jupyter_fed.packages._valuation`); SHAP values
explain the trees' raw score (log-odds for classification).
``create_vfl_session`` adds ``prl_session_id``, ``vfl_mode`` and (predict) ``training_session_id``.
The data_config and task options are splitnn's (:mod:`jupyter_fed.packages.splitnn.config`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages._valuation import FeatureImportanceScore, InfluenceScore, evals_problems
from jupyter_fed.packages.gbm.config import MAX_BINS, MAX_DEPTH
from jupyter_fed.packages.splitnn.config import SplitNNData, TaskOptions

__all__ = ["VflGbmConfig", "parse", "parse_options"]

MAX_ITER = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TreeParams(_Strict):
    """scikit-learn's ``HistGradientBoosting*`` hyper-parameters of the same names."""

    max_depth: int = Field(3, ge=1, le=MAX_DEPTH)
    learning_rate: float = Field(0.1, gt=0, le=10, allow_inf_nan=False)
    max_iter: int | None = Field(None, ge=1, le=MAX_ITER, description="boosting iterations; "
                                 "the session's num_rounds caps it (default: num_rounds)")
    max_bins: int = Field(255, ge=2, le=MAX_BINS)
    min_samples_leaf: int = Field(20, ge=1)
    l2_regularization: float = Field(0.0, ge=0, allow_inf_nan=False)
    random_state: int | None = None


class ModelSection(_Strict):
    params: TreeParams = Field(default_factory=TreeParams)


class StrategySection(_Strict):
    name: str = "VflGbm"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v.lower() not in ("vflgbm", "vfl_gbm", "secureboost"):
            raise ValueError("vfl_gbm's strategy is VflGbm")
        return "VflGbm"


class MLTask(_Strict):
    type: Literal["classification", "regression"] = "classification"
    params: dict[str, Any] = Field(default_factory=dict)


class VflGbmConfig(_Strict):
    """The vfl_gbm ``model_config``; field names follow the reference SDK."""

    experiment_name: str = ""
    experiment_description: str = ""
    strategy: StrategySection = Field(default_factory=StrategySection)
    model: ModelSection = Field(default_factory=ModelSection)
    ml_task: MLTask = Field(default_factory=MLTask)
    seed: int = 0
    key_bits: Literal[1024, 2048, 3072] = 2048
    prl_session_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    vfl_mode: Literal["train", "predict"] = "train"
    training_session_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    influence_score: InfluenceScore = Field(default_factory=InfluenceScore, description=(
        "each party's Shapley value for the fall in validation loss, every tree: the label "
        "party walks the trees with the parties outside a coalition treated as missing (both "
        "children, weighted by their training rows); needs a test dataset"))
    feature_importance_score: FeatureImportanceScore = Field(
        default_factory=FeatureImportanceScore, description=(
            "SHAP values of every party's own columns once training ends, on a subsample of "
            "linked training rows: passive parties send the left/right bits of their perturbed "
            "rows at their own splits and get the model's raw scores back"))

    @model_validator(mode="after")
    def _mode(self) -> VflGbmConfig:
        if self.vfl_mode == "predict" and not self.training_session_id:
            raise ValueError("vfl_mode 'predict' needs training_session_id (a completed "
                             "vfl_gbm training session)")
        if self.vfl_mode == "train" and self.training_session_id:
            raise ValueError("training_session_id is for vfl_mode 'predict'")
        return self

    @property
    def explained_outputs(self) -> list[str]:
        """What feature importance explains: the trees' raw score (additive over trees)."""
        return ["raw score (log-odds of class 1)"] if self.classification else ["prediction"]

    @property
    def params(self) -> TreeParams:
        return self.model.params

    @property
    def classification(self) -> bool:
        return self.ml_task.type == "classification"

    def iterations(self, num_rounds: int) -> int:
        cap = self.params.max_iter
        return min(cap, num_rounds) if cap is not None else num_rounds


def parse(model_config: dict[str, Any] | None, data_config: dict[str, Any] | None
          ) -> tuple[VflGbmConfig, SplitNNData]:
    """Validate both configs; a bad field raises ``ConfigError`` naming it."""
    cfg = parse_config(VflGbmConfig, model_config, "model_config")
    data = parse_config(SplitNNData, data_config, "data_config")
    labels = [c for c, d in data.clients.items() if d.label_client]
    if len(labels) != 1:
        details = [{"field": f"data_config.clients.{c}.label_client",
                    "error": "exactly one client holds the target (label_client: true); "
                             f"{len(labels)} do"} for c in (labels or data.clients)]
        raise ConfigError("invalid session: " + details[0]["error"],
                          "mark exactly one client label_client: true, with its target",
                          details=details)
    details = evals_problems(cfg.feature_importance_score,
                             max(len(d.predictors) for d in data.clients.values()))
    if details:
        raise ConfigError("invalid session: " + details[0]["error"],
                          "raise feature_importance_score.params.max_evals or leave it None",
                          details=details)
    return cfg, data


def parse_options(client: str, options: dict[str, Any] | None) -> TaskOptions:
    """One client's task options (splitnn's: batch_size is accepted and unused)."""
    return parse_config(TaskOptions, options, f"options[{client}]")
