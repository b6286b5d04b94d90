"""EDA configuration: the privacy parameters (model_config) and the columns (data_config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config


class EdaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epsilon: float = Field(1.0, gt=0, le=100, description="spent on each dataset, split across "
                           "its columns")
    mechanism: Literal["laplace", "gaussian"] = "laplace"
    delta: float = Field(1e-6, gt=0, lt=1e-2, description="for the Gaussian mechanism")
    bins: int = Field(20, ge=2, le=200)
    max_categories: int = Field(20, ge=2, le=200, description="integer columns with at most this "
                                "many distinct values are treated as categorical")
    bounds_share: float = Field(0.2, gt=0, lt=1, description="share of a numeric column's epsilon "
                                "spent on private clipping bounds")
    bounds_rows: int = Field(200_000, ge=1000, description="rows (from the start of the file) the "
                             "private bounds are estimated on, so one pass over the data suffices")


def parse(model_config: dict[str, Any] | None) -> EdaConfig:
    return parse_config(EdaConfig, model_config, "model_config")


def select_columns(spec: list[Any] | None, names: list[str]) -> list[str]:
    """Columns named in ``data_config`` for one dataset: names, 1-based indices, or [] for all."""
    if not spec:
        return list(names)
    out = []
    for item in spec:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ConfigError(f"column {item!r} is neither a name nor an index", "")
        if isinstance(item, int):
            if not 1 <= item <= len(names):
                raise ConfigError(f"column index {item} is out of range 1..{len(names)}",
                                  "indices count from 1, as in the reference SDK")
            item = names[item - 1]
        elif item not in names:
            raise ConfigError(f"dataset has no column {item!r}", "check the catalog schema")
        if item not in out:
            out.append(item)
    return out


def privacy_cost(step: str, params: dict[str, Any]) -> dict[str, float]:
    """The whole per-dataset epsilon is charged to the dataset, before any row is read."""
    if step != "compute":
        return {}
    return {"data": parse(params.get("model_config")).epsilon}
