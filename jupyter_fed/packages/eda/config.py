"""EDA configuration: the privacy parameters (model_config) and the columns (data_config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages._config import parse_config
from jupyter_fed.privacy.accounting import DatasetFacts, PrivacyCost, delta_cap


class EdaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epsilon: float = Field(1.0, gt=0, le=100, description="spent on each dataset, split evenly "
                           "across its columns: fewer columns give each more")
    mechanism: Literal["laplace", "gaussian"] = Field("laplace", description="noise of numeric "
                                                      "histograms and sums; category names always "
                                                      "use Laplace partition selection")
    delta: float = Field(1e-6, gt=0, lt=1e-2, description="spent on each dataset (partition "
                         "selection of categories, Gaussian noise); capped by the dataset's policy "
                         "(1/n² by default)")
    bins: int = Field(20, ge=2, le=200)
    categorical: list[str] = Field(default_factory=list, description="columns to describe by "
                                   "their values (DP partition selection); binary and label "
                                   "columns of the registered schema always are")
    bounds_share: float = Field(0.5, gt=0, lt=1, description="share of a numeric column's epsilon "
                                "spent on private clipping bounds when none were declared")
    bounds_rows: int = Field(200_000, ge=1000, description="rows (from the start of the file) the "
                             "private bounds are learnt on")


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


def dataset_delta(cfg: EdaConfig, num_rows: int, cap: float | None = None) -> float:
    """Delta one EDA step spends on a dataset: the config's, never above the policy's cap."""
    return min(cfg.delta, cap if cap is not None else delta_cap(num_rows))


def privacy_cost(step: str, params: dict[str, Any], facts: Mapping[str, DatasetFacts]
                 ) -> dict[str, PrivacyCost]:
    """The whole per-dataset (epsilon, delta) is charged to the dataset, before any row is read."""
    if step != "compute":
        return {}
    cfg = parse(params.get("model_config"))
    data = facts.get("data")
    delta = dataset_delta(cfg, data.num_rows, data.delta_cap) if data else cfg.delta
    return {"data": PrivacyCost(cfg.epsilon, delta)}


def epsilon_notice(model_config: Mapping[str, Any] | None, data_config: Mapping[str, Any],
                   catalog: list[Mapping[str, Any]]) -> str:
    """What the chosen epsilon means per column, said before a session runs.

    ``catalog`` is the SDK's ``client.datasets()`` rows (names and schemas, never rows).
    """
    cfg = parse(dict(model_config or {}))
    parts = []
    for name, spec in data_config.items():
        entry = next((d for d in catalog if d.get("name") == name), None)
        if entry is None:
            continue
        features = [c["name"] for c in entry.get("columns", []) if c.get("role") != "id"]
        try:
            count = len(select_columns(spec if isinstance(spec, list) else [], features))
        except ConfigError:
            continue
        parts.append(f"{name}: {count} column(s), epsilon {cfg.epsilon / max(count, 1):.3g} each")
    if not parts:
        return ""
    return (f"EDA spends epsilon {cfg.epsilon:g} per dataset, split evenly across its columns — "
            + "; ".join(parts) + ". Choosing fewer columns gives each more (less noise).")
