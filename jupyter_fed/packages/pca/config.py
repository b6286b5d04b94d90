"""``model_config`` / ``data_config`` of pca, in the reference SDK's shape::

    model_config = {"strategy": {"name": "FedPCA", "params": {}},
                    "model": {"params": {"n_features": 10, "n_components": 3, "whiten": False}}}
    data_config = {"predictors": []}          # [] = every numeric non-id column

``n_components`` is a number of axes, or a fraction of the variance to explain (as scikit-learn's
``PCA(n_components=0.9)``); ``None`` keeps every axis. ``n_features``, when given, must equal the
number of predictors (a guard against a silently different column set).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.packages._config import parse_config

__all__ = ["PCAConfig", "PCAData", "parse"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Strategy(_Strict):
    name: Literal["FedPCA"] = "FedPCA"
    params: dict[str, Any] = Field(default_factory=dict)


class PCAParams(_Strict):
    n_features: int | None = Field(None, gt=0)
    n_components: int | float | None = None
    whiten: bool = False

    @field_validator("n_components")
    @classmethod
    def _components(cls, v: int | float | None) -> int | float | None:
        if isinstance(v, bool):
            raise ValueError("must be a number of components or a fraction of variance")
        if isinstance(v, float) and v.is_integer() and v >= 1:
            v = int(v)
        if isinstance(v, int) and v < 1:
            raise ValueError("must be at least 1")
        if isinstance(v, float) and not 0 < v < 1:
            raise ValueError("a fraction of variance must lie strictly between 0 and 1")
        return v


class ModelSection(_Strict):
    params: PCAParams = Field(default_factory=PCAParams)


class PCAConfig(_Strict):
    """The pca ``model_config``. PCA is exact in one round: ``num_rounds`` is ignored."""

    experiment_name: str = ""
    experiment_description: str = ""
    strategy: Strategy = Field(default_factory=Strategy)
    model: ModelSection = Field(default_factory=ModelSection)
    seed: int = 0


class PCAData(_Strict):
    predictors: list[str | int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> PCAData:
        if len(set(map(str, self.predictors))) < len(self.predictors):
            raise ValueError("predictors lists a column more than once")
        return self


def parse(model_config: dict[str, Any] | None, data_config: dict[str, Any] | None
          ) -> tuple[PCAConfig, PCAData]:
    """Validate both configs and their agreement (``n_features``, ``n_components`` vs predictors)."""
    from jupyter_fed.errors import ConfigError

    cfg = parse_config(PCAConfig, model_config, "model_config")
    data = parse_config(PCAData, data_config, "data_config")
    p, given = cfg.model.params, len(data.predictors)
    if given and p.n_features is not None and p.n_features != given:
        raise ConfigError(f"model_config.model.params.n_features is {p.n_features} but data_config "
                          f"lists {given} predictors", "set n_features to the number of predictors",
                          details=[{"field": "model_config.model.params.n_features",
                                    "error": "does not match the number of predictors"}])
    width = given or p.n_features
    if width and isinstance(p.n_components, int) and p.n_components > width:
        raise ConfigError(f"model_config.model.params.n_components is {p.n_components}, more than "
                          f"the {width} features", "ask for at most one component per feature",
                          details=[{"field": "model_config.model.params.n_components",
                                    "error": "more components than features"}])
    return cfg, data
