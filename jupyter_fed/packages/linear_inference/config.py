"""``model_config`` / ``data_config`` of linear_inference, in the reference SDK's shape::

    model_config = {"strategy": {"name": "LogitRegInference", "params": {}}, "seed": 23}
    data_config = {"target": "y", "shared_predictors": ["x1", "x2"],
                   "chunked_predictors": ["x0", "x3", "x10", "x11"]}

One model per chunked predictor: the target against an intercept, every shared predictor and that
one chunked predictor. Columns are names or 0-based indices into the dataset's columns.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jupyter_fed.packages._config import parse_config

__all__ = ["InferenceConfig", "InferenceData", "Strategy", "parse"]

Column = str | int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Strategy(_Strict):
    name: Literal["LogitRegInference", "LinearRegInference"] = "LogitRegInference"
    params: dict[str, Any] = Field(default_factory=dict)


class InferenceConfig(_Strict):
    """The linear_inference ``model_config``.

    ``tol`` is the Newton stopping rule of statsmodels' ``Logit.fit``: every coefficient of every
    model moved by less than ``tol`` in the last iteration (``num_rounds`` is then a maximum).
    ``alpha`` sets the level of the confidence intervals (``1 - alpha``).
    """

    experiment_name: str = ""
    experiment_description: str = ""
    strategy: Strategy = Field(default_factory=Strategy)
    seed: int = 0
    tol: float = Field(1e-8, gt=0, lt=1)
    alpha: float = Field(0.05, gt=0, lt=1)

    @property
    def logistic(self) -> bool:
        return self.strategy.name == "LogitRegInference"


class InferenceData(_Strict):
    target: Column
    shared_predictors: list[Column] = Field(default_factory=list)
    chunked_predictors: list[Column] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> InferenceData:
        named = [self.target, *self.shared_predictors, *self.chunked_predictors]
        repeated = sorted({str(c) for c in named if named.count(c) > 1})
        if repeated:
            raise ValueError(f"column(s) {', '.join(repeated)} appear more than once among target, "
                             "shared_predictors and chunked_predictors")
        return self

    def columns(self) -> list[Column]:
        """Target, shared, chunked: the order every step reads them in."""
        return [self.target, *self.shared_predictors, *self.chunked_predictors]


def parse(model_config: dict[str, Any] | None, data_config: dict[str, Any] | None
          ) -> tuple[InferenceConfig, InferenceData]:
    return (parse_config(InferenceConfig, model_config, "model_config"),
            parse_config(InferenceData, data_config, "data_config"))


def resolve(spec: list[Column], names: list[str], field: str, where: str) -> list[str]:
    """Column names for ``spec`` (names, or 0-based indices into ``names``).

    Raises ``ConfigError`` naming ``field`` for an unknown name or an index out of range.
    """
    from jupyter_fed.errors import ConfigError

    out = []
    for item in spec:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < len(names):
                raise ConfigError(f"{field}: column index {item} is out of range for {where} "
                                  f"({len(names)} columns, counted from 0)", "",
                                  details=[{"field": field, "error": "index out of range"}])
            item = names[item]
        if item not in names:
            raise ConfigError(f"{field}: {item!r} is not a column of {where}",
                              "check the dataset's schema with client.datasets()",
                              details=[{"field": field, "error": "unknown column"}])
        out.append(str(item))
    return out
