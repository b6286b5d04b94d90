"""EDA intersect mode: configuration (model_config, data_config) and what each step costs.

``model_config`` is individual mode's (``epsilon``, ``mechanism``, ``delta``, ``bins``,
``categorical``, …: the 1D releases of each party's columns, on the intersection only) plus

``pair_epsilon``
    what each dataset spends on *all* the pair aggregates together (2D histograms, group sums,
    cross-products); every pair gets an equal share, and both parties of a pair are charged it.
``bins2d``
    bins per numeric column in the 2D histograms (and the groups of ``groupby``).

``data_config``, in the reference SDK's shape (the SDK's ``create_eda_session(...,
eda_mode="intersect", prl_session_id=..., paired_columns=...)`` builds it)::

    {"prl_session_id": "…",
     "clients": {"active": {"columns": []}, "passive": ["x1", "x5"]},
     "paired_columns": {"active": ["x0"], "passive": ["x1", "x5"]}}

Client names are those of the record linkage (tasks join with ``client_name``). ``clients`` may
be left out: every other top-level key is then a client. Every combination of two paired
columns is a pair — across parties, computed under homomorphic encryption; within one party,
locally — as in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from jupyter_fed.packages._config import parse_config
from jupyter_fed.packages.eda.config import EdaConfig, dataset_delta
from jupyter_fed.privacy.accounting import DatasetFacts, PrivacyCost

__all__ = ["PAIR_STEPS", "ClientColumns", "IntersectConfig", "IntersectData", "eda_part",
           "pair_share", "pairs_of", "parse", "parse_data", "privacy_cost"]

RESERVED = ("clients", "prl_session_id", "paired_columns")
PAIR_STEPS = ("encrypt", "evaluate", "local_pairs")
"""Steps that read rows for pair aggregates: each charges its pairs' share of ``pair_epsilon``."""


class IntersectConfig(EdaConfig):
    pair_epsilon: float = Field(1.0, gt=0, le=100, description="spent on each dataset for all "
                                "pair aggregates together, split evenly across the pairs")
    bins2d: int = Field(10, ge=2, le=50, description="bins per numeric column in 2D histograms "
                        "and groupby groups")


class ClientColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: list[str | int] = Field(default_factory=list)
    backend: dict[str, Any] | str | None = None


class IntersectData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prl_session_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="a completed "
                                "prl session that linked these clients' datasets")
    clients: dict[str, ClientColumns] = Field(min_length=2, max_length=32)
    paired_columns: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "clients" not in data:
            clients = {k: v for k, v in data.items() if k not in RESERVED}
            data = {**{k: v for k, v in data.items() if k in RESERVED}, "clients": clients}
        clients = data.get("clients")
        if isinstance(clients, dict):  # a client's value may be its list of columns
            data = {**data, "clients": {k: {"columns": v} if isinstance(v, list) else v
                                        for k, v in clients.items()}}
        return data

    @field_validator("paired_columns")
    @classmethod
    def _paired(cls, value: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        clients = info.data.get("clients") or {}
        for client, cols in value.items():
            if clients and client not in clients:
                raise ValueError(f"paired_columns names client {client!r}, which is not one of "
                                 f"the clients ({', '.join(clients)})")
            if len(set(cols)) < len(cols):
                raise ValueError(f"paired_columns.{client} lists a column twice")
        return value

    def paired(self) -> list[tuple[str, str]]:
        """(client, column) of every paired column, clients in ``clients`` order."""
        return [(c, col) for c in self.clients for col in self.paired_columns.get(c, [])]


def pairs_of(data: IntersectData) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Every combination of two paired columns, as the reference SDK pairs them."""
    cols = data.paired()
    return [(cols[i], cols[j]) for i in range(len(cols)) for j in range(i + 1, len(cols))]


def parse(model_config: Mapping[str, Any] | None) -> IntersectConfig:
    return parse_config(IntersectConfig, model_config, "model_config")


def parse_data(data_config: Mapping[str, Any] | None) -> IntersectData:
    return parse_config(IntersectData, data_config, "data_config")


def eda_part(cfg: IntersectConfig) -> dict[str, Any]:
    """The individual-mode ``model_config`` inside this one (for the 1D releases)."""
    return cfg.model_dump(exclude={"pair_epsilon", "bins2d"})


def pair_share(cfg: IntersectConfig, params: Mapping[str, Any]) -> tuple[int, float]:
    """(pairs in this step, epsilon of the step): each pair gets ``pair_epsilon / total``."""
    pairs = params.get("pairs")
    total = params.get("total_pairs")
    if not isinstance(pairs, list) or not pairs or not isinstance(total, int) or \
            isinstance(total, bool) or total < len(pairs):
        raise ValueError("a pair step names its pairs and the session's number of pairs")
    return len(pairs), cfg.pair_epsilon * len(pairs) / total


def privacy_cost(step: str, params: dict[str, Any], facts: Mapping[str, DatasetFacts]
                 ) -> dict[str, PrivacyCost]:
    """``describe``: individual mode's (epsilon, delta); a pair step: its pairs' share of
    ``pair_epsilon`` (both parties of a pair pay it: the key owner when it encrypts, the
    evaluator when it adds the noise); ``decrypt`` reads no rows."""
    cfg = parse(params.get("model_config"))
    if step == "describe":
        data = facts.get("data")
        delta = dataset_delta(cfg, data.num_rows, data.delta_cap) if data else cfg.delta
        return {"data": PrivacyCost(cfg.epsilon, delta)}
    if step in PAIR_STEPS:
        return {"data": PrivacyCost(pair_share(cfg, params)[1])}
    return {"data": PrivacyCost(0.0, reads=False)}
