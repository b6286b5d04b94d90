"""``model_config`` / ``data_config`` of vfl_glm, in the reference SDK's shape (``VflGlm``)::

    model_config = {
        "strategy": {"name": "VflGlm", "params": {}},
        "model": {
            "passive_client": {"params": {"input_size": 7, "output_activation": "sigmoid"}},
            "active_client": {"params": {"input_size": 8, "output_activation": "sigmoid"}},
        },
        "ml_task": {"type": "logistic", "params": {}},
        "optimizer": {"name": "SGD", "params": {"learning_rate": 0.2, "momentum": 0.0}},
        "seed": 23,
    }
    data_config = {  # as splitnn's: exactly one label client, the only one with a target
        "passive_client": {"label_client": False, "predictors": ["x1", "x3"], "target": None},
        "active_client": {"label_client": True, "predictors": ["x0", "x2"], "target": "y"},
    }

``create_vfl_session`` adds ``prl_session_id``, ``vfl_mode`` and (predict) ``training_session_id``.
The fit is the unpenalised maximum-likelihood GLM; ``optimizer`` is accepted for the reference's
configs but the solver is ours (see ``plan``): ``num_rounds`` iterations of it, stopping early
once the deviance changes by less than ``tol`` (relative). ``output_activation`` is accepted and
checked against the family's link (``sigmoid`` ↔ logit, ``exp`` ↔ log, ``identity`` /
``linear``/``None``). ``release_coefficients`` (ours, default off) puts every party's
coefficients in the artefact — see the README for why they stay at the parties by default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages._valuation import FeatureImportanceScore, InfluenceScore
from jupyter_fed.packages.ffnet.config import Optimizer
from jupyter_fed.packages.glm.config import MLTask
from jupyter_fed.packages.splitnn.config import SplitNNData, TaskOptions

__all__ = ["VflGlmConfig", "parse", "parse_options"]

ACTIVATION_LINKS = {"sigmoid": "logit", "exp": "log", "exponential": "log", "identity": "identity",
                    "linear": "identity"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartyParams(_Strict):
    input_size: int = Field(gt=0, le=2000)
    output_activation: str | None = None

    @field_validator("output_activation")
    @classmethod
    def _act(cls, v: str | None) -> str | None:
        if v is not None and v.lower() not in ACTIVATION_LINKS:
            raise ValueError(f"must be one of {', '.join(ACTIVATION_LINKS)} (or null)")
        return None if v is None else v.lower()


class _Params(_Strict):
    params: PartyParams


class StrategySection(_Strict):
    name: Literal["VflGlm", "vflglm", "VFLGLM", "vfl_glm"] = "VflGlm"
    params: dict[str, Any] = Field(default_factory=dict)


class VflGlmConfig(_Strict):
    """The vfl_glm ``model_config``; field names follow the reference SDK."""

    experiment_name: str = ""
    experiment_description: str = ""
    strategy: StrategySection = Field(default_factory=StrategySection)
    model: dict[str, _Params] = Field(min_length=1, max_length=16)
    ml_task: MLTask = Field(default_factory=MLTask)
    optimizer: Optimizer = Field(default_factory=Optimizer)
    seed: int = 0
    tol: float = Field(1e-10, ge=0, lt=1, description="stop once the deviance's relative change "
                       "is below this")
    memory: int = Field(3, ge=1, le=10, description="past steps each passive party's search "
                        "direction spans beside its gradient")
    release_coefficients: bool = False
    influence_score: InfluenceScore = Field(default_factory=InfluenceScore)
    feature_importance_score: FeatureImportanceScore = Field(
        default_factory=FeatureImportanceScore)
    prl_session_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    vfl_mode: Literal["train", "predict"] = "train"
    training_session_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @model_validator(mode="after")
    def _check(self) -> VflGlmConfig:
        if self.vfl_mode == "predict" and not self.training_session_id:
            raise ValueError("vfl_mode 'predict' needs training_session_id (a completed "
                             "vfl_glm training session)")
        if self.vfl_mode == "train" and self.training_session_id:
            raise ValueError("training_session_id is for vfl_mode 'predict'")
        if self.ml_task.params.alpha or self.ml_task.params.l1_ratio:
            raise ValueError("ml_task.params.alpha: vfl_glm fits the unpenalised GLM")
        return self


def parse(model_config: dict[str, Any] | None, data_config: dict[str, Any] | None
          ) -> tuple[VflGlmConfig, SplitNNData]:
    """Validate both configs and their agreement (one model entry per client, input sizes)."""
    cfg = parse_config(VflGlmConfig, model_config, "model_config")
    data = parse_config(SplitNNData, data_config, "data_config")
    details = []
    labels = [c for c, d in data.clients.items() if d.label_client]
    if len(labels) != 1:
        details += [{"field": f"data_config.clients.{c}.label_client",
                     "error": f"{len(labels)} clients say label_client: true; exactly one client "
                              "holds the target"} for c in (labels or data.clients)]
    nets, clients = set(cfg.model), set(data.clients)
    for c in sorted(clients - nets):
        details.append({"field": f"model_config.model.{c}",
                        "error": f"missing: data_config names client {c!r}"})
    for c in sorted(nets - clients):
        details.append({"field": f"model_config.model.{c}",
                        "error": f"{c!r} is not a client of data_config"})
    link = cfg.ml_task.link
    for c in sorted(nets & clients):
        p = cfg.model[c].params
        n = len(data.clients[c].predictors)
        if p.input_size != n:
            details.append({"field": f"model_config.model.{c}.params.input_size",
                            "error": f"is {p.input_size} but data_config.{c} lists {n} "
                                     "predictors"})
        if p.output_activation and ACTIVATION_LINKS[p.output_activation] != link:
            details.append({"field": f"model_config.model.{c}.params.output_activation",
                            "error": f"{p.output_activation!r} does not match the "
                                     f"{cfg.ml_task.type} family's {link} link"})
    if details:
        raise ConfigError("invalid session: " + "; ".join(f"{d['field']}: {d['error']}"
                                                          for d in details),
                          "give one model entry per client, with input_size = its number of "
                          "predictors, and exactly one label client", details=details)
    return cfg, data


def parse_options(client: str, options: dict[str, Any] | None) -> TaskOptions:
    """One client's task options (``batch_size`` is accepted and unused: the fit is full-batch)."""
    return parse_config(TaskOptions, options, f"options[{client}]")
