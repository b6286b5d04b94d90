"""``model_config`` / ``data_config`` / task options of splitnn, in the reference SDK's shape::

    model_config = {
        "strategy": {"name": "SplitNN", "params": {}},
        "model": {
            "feature_models": {
                "passive_client": {"params": {"input_size": 7, "hidden_layer_sizes": [6],
                                              "output_size": 5}},
                "active_client": {"params": {"input_size": 8, "hidden_layer_sizes": [6],
                                             "output_size": 5}},
            },
            "label_model": {"params": {"hidden_layer_sizes": [5], "output_size": 2}},
        },
        "ml_task": {"type": "classification", "params": {"loss_weights": None}},
        "optimizer": {"name": "SGD", "params": {"learning_rate": 0.2, "momentum": 0.0}},
        "seed": 23,
    }
    data_config = {
        "passive_client": {"label_client": False, "predictors": ["x1", "x3"], "target": None},
        "active_client": {"label_client": True, "predictors": ["x0", "x2"], "target": "y"},
    }

``create_vfl_session`` adds ``prl_session_id``, ``vfl_mode`` and (predict) ``training_session_id``
to ``model_config``. ``exchange_batches`` (ours) is how many batches one exchange between the
parties carries: each party's step then forwards (or back-propagates) that many batches at once,
at the price of embeddings up to that many batches stale (see ``plan``). Each party standardises
its own predictors with its own training rows' mean and spread (``standardize``), which never
leave it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages._valuation import (
    FeatureImportanceScore,
    InfluenceScore,
    evals_problems,
)
from jupyter_fed.packages.ffnet.config import ACTIVATIONS, MLTask, Optimizer

__all__ = ["ClientData", "DPParams", "SplitNNConfig", "SplitNNData", "TaskOptions", "parse"]

OUTPUT_SUFFIXES = (".csv", ".parquet")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _layers(v: list[int]) -> list[int]:
    if any(s <= 0 for s in v):
        raise ValueError("every hidden layer size must be a positive integer")
    return v


class FeatureNet(_Strict):
    """One party's bottom network: its predictors in, an embedding of ``output_size`` out."""

    input_size: int = Field(gt=0)
    hidden_layer_sizes: list[int] = Field(default_factory=lambda: [16], max_length=16)
    output_size: int = Field(gt=0, le=4096)
    activation: str = "relu"

    _sizes = field_validator("hidden_layer_sizes")(_layers)

    @field_validator("activation")
    @classmethod
    def _act(cls, v: str) -> str:
        if v.lower() not in ACTIVATIONS:
            raise ValueError(f"must be one of {', '.join(ACTIVATIONS)}")
        return v.lower()


class LabelNet(_Strict):
    """The head at the label party: every party's embedding, concatenated, in; the output out."""

    hidden_layer_sizes: list[int] = Field(default_factory=lambda: [16], max_length=16)
    output_size: int = Field(gt=0)
    activation: str = "relu"

    _sizes = field_validator("hidden_layer_sizes")(_layers)
    _act = field_validator("activation")(FeatureNet._act.__func__)  # type: ignore[attr-defined]


class _Params(_Strict):
    params: dict[str, Any]


class ModelSection(_Strict):
    feature_models: dict[str, _Params] = Field(min_length=2, max_length=16)
    label_model: _Params

    def feature(self, client: str) -> FeatureNet:
        return FeatureNet.model_validate(self.feature_models[client].params)

    @property
    def head(self) -> LabelNet:
        return LabelNet.model_validate(self.label_model.params)

    @model_validator(mode="after")
    def _nets(self) -> ModelSection:
        for c in self.feature_models:
            self.feature(c)  # raise here, with pydantic's field names
        self.head  # noqa: B018
        return self


class StrategySection(_Strict):
    name: Literal["SplitNN", "splitnn"] = "SplitNN"
    params: dict[str, Any] = Field(default_factory=dict)


class DPParams(_Strict):
    """Gaussian noise on the exchanged vectors: each row's embedding (at every party) clipped to
    L2 norm ``embedding_clip``, each row's gradient (at the label party) to ``gradient_clip``,
    and noise calibrated so that every row's releases over the session together cost at most
    ``epsilon`` (zCDP composition, converted at ``delta``). See the README for what it covers."""

    epsilon: float = Field(gt=0, le=1000, allow_inf_nan=False)
    delta: float = Field(1e-6, gt=0, lt=1)
    embedding_clip: float = Field(1.0, gt=0, le=1e4, allow_inf_nan=False)
    gradient_clip: float = Field(1.0, gt=0, le=1e4, allow_inf_nan=False)


class SplitNNConfig(_Strict):
    """The splitnn ``model_config``; field names follow the reference SDK."""

    experiment_name: str = ""
    experiment_description: str = ""
    strategy: StrategySection = Field(default_factory=StrategySection)
    model: ModelSection | None = None
    ml_task: MLTask = Field(default_factory=MLTask)
    optimizer: Optimizer = Field(default_factory=Optimizer)
    seed: int = 0
    standardize: bool = True
    exchange_batches: int = Field(8, ge=1, le=100_000, description="batches one exchange "
                                  "carries (one step per party); more is faster, staler")
    differential_privacy_params: DPParams | None = None
    influence_score: InfluenceScore = Field(default_factory=InfluenceScore)
    feature_importance_score: FeatureImportanceScore = Field(
        default_factory=FeatureImportanceScore)
    prl_session_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    vfl_mode: Literal["train", "predict"] = "train"
    training_session_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @model_validator(mode="after")
    def _mode(self) -> SplitNNConfig:
        if self.vfl_mode == "predict" and not self.training_session_id:
            raise ValueError("vfl_mode 'predict' needs training_session_id (a completed "
                             "splitnn training session)")
        if self.vfl_mode == "train" and self.training_session_id:
            raise ValueError("training_session_id is for vfl_mode 'predict'")
        if self.model is None:
            raise ValueError("model (feature_models and label_model) is required")
        head = self.model.head
        if self.ml_task.type == "classification" and head.output_size < 2:
            raise ValueError("model.label_model.params.output_size must be >= 2 for "
                             "classification (one output per class)")
        if self.ml_task.type == "regression" and head.output_size != 1:
            raise ValueError("model.label_model.params.output_size must be 1 for regression")
        if self.feature_importance_score.enable and self.differential_privacy_params:
            raise ValueError("feature_importance_score: the perturbed embeddings it exchanges "
                             "are not covered by differential_privacy_params; disable one")
        return self

    @property
    def explained_outputs(self) -> list[str]:
        """What feature importance explains: the prediction, the class-1 probability or every
        class's probability."""
        if self.ml_task.type == "regression":
            return ["prediction"]
        if self.classes == 2:
            return ["probability of class 1"]
        return [f"probability of class {k}" for k in range(self.classes)]

    @property
    def classes(self) -> int:
        assert self.model is not None
        return self.model.head.output_size


class ClientData(_Strict):
    """One party's columns: its predictors and, at the one label party, the target."""

    label_client: bool = False
    predictors: list[str] = Field(min_length=1, max_length=10_000)
    target: str | None = None
    backend: dict[str, Any] | str | None = None

    @model_validator(mode="after")
    def _target(self) -> ClientData:
        if self.label_client and not self.target:
            raise ValueError("the label client must name its target")
        if not self.label_client and self.target:
            raise ValueError("only the label client holds the target; a passive party's "
                             "target must be null")
        if self.target in self.predictors:
            raise ValueError(f"target {self.target!r} is also listed in predictors")
        if len(set(self.predictors)) < len(self.predictors):
            raise ValueError("a predictor is listed twice")
        return self


class SplitNNData(_Strict):
    """The splitnn ``data_config``: client name → :class:`ClientData`."""

    clients: dict[str, ClientData] = Field(min_length=2, max_length=16)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        """The reference's shape: every top-level key is a client."""
        if isinstance(data, dict) and "clients" not in data:
            return {"clients": data}
        return data

    @property
    def label(self) -> str:
        return next(c for c, d in self.clients.items() if d.label_client)

    @property
    def passive(self) -> list[str]:
        return [c for c, d in self.clients.items() if not d.label_client]


class TaskOptions(_Strict):
    """What one party's task says beside its datasets (``tb.vfl_train`` / ``tb.vfl_predict``)."""

    batch_size: int = Field(1024, ge=1, le=1_000_000)
    storage_path: str | None = Field(None, max_length=4096)
    raw_output: bool = False

    @field_validator("storage_path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("contains a NUL character")
        return v


def parse(model_config: dict[str, Any] | None, data_config: dict[str, Any] | None
          ) -> tuple[SplitNNConfig, SplitNNData]:
    """Validate both configs and their agreement (one feature model per client, input sizes)."""
    cfg = parse_config(SplitNNConfig, model_config, "model_config")
    data = parse_config(SplitNNData, data_config, "data_config")
    assert cfg.model is not None
    details = []
    labels = [c for c, d in data.clients.items() if d.label_client]
    if not labels:
        details += [{"field": f"data_config.clients.{c}.label_client",
                     "error": "no client is the label client (exactly one holds the target)"}
                    for c in data.clients]
    if len(labels) > 1:
        details += [{"field": f"data_config.clients.{c}.label_client",
                     "error": f"{', '.join(labels)} all say label_client: true; exactly one "
                              "client holds the target"} for c in labels]
    nets, clients = set(cfg.model.feature_models), set(data.clients)
    for c in sorted(clients - nets):
        details.append({"field": f"model_config.model.feature_models.{c}",
                        "error": f"missing: data_config names client {c!r}"})
    for c in sorted(nets - clients):
        details.append({"field": f"model_config.model.feature_models.{c}",
                        "error": f"{c!r} is not a client of data_config"})
    for c in sorted(nets & clients):
        size, n = cfg.model.feature(c).input_size, len(data.clients[c].predictors)
        if size != n:
            details.append({"field": f"model_config.model.feature_models.{c}.params.input_size",
                            "error": f"is {size} but data_config.{c} lists {n} predictors"})
    details += evals_problems(cfg.feature_importance_score,
                              max(len(d.predictors) for d in data.clients.values()))
    if details:
        raise ConfigError("invalid session: " + "; ".join(f"{d['field']}: {d['error']}"
                                                          for d in details),
                          "give one feature model per client, with input_size = its number of "
                          "predictors", details=details)
    return cfg, data


def parse_options(client: str, options: dict[str, Any] | None) -> TaskOptions:
    """One client's task options; a bad one raises ``ConfigError`` naming ``options.<field>``."""
    return parse_config(TaskOptions, options, f"options[{client}]")
