"""``data_config`` / ``model_config`` of the stats package.

``data_config`` says which rows and columns each dataset contributes::

    {"train_silo0": ["x0", "x1", "y"], "train_silo1": []}            # [] = every column
    {"datasets": {"train_silo0": [], "train_silo1": {"columns": [0, 1, "y"]}},
     "filter": "x0 > 0 AND y == 1", "condition_on": ["y"]}

A dataset the config does not name uses the top-level ``columns`` (default: every numeric non-id
column), ``filter`` and ``condition_on``. ``model_config`` attaches a PSR contract::

    {"contract": "COUNT(x0) >= 100\\nMEAN(y) > 0.2", "send_action": "block",
     "receive_action": "allow", "merged_contract": "COUNT(x0) >= 150"}

A row filter makes that dataset's answer differentially private (``epsilon``, ``delta``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.contracts import Comparison, Contract, ContractSyntaxError, parse_contract, parse_filter
from jupyter_fed.errors import PermissionDenied
from jupyter_fed.packages._config import parse_config
from jupyter_fed.privacy.accounting import PrivacyCost

__all__ = ["DatasetQuery", "StatsDataConfig", "StatsModelConfig", "parse_data_config",
           "parse_model_config"]

RESERVED = ("datasets", "columns", "filter", "condition_on", "batch_rows")
Action = Literal["block", "allow"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnTest(_Strict):
    """One filter condition in dict form: ``{"column": "x0", "op": ">", "value": 0}``."""

    column: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float = Field(allow_inf_nan=False)


FilterSpec = str | ColumnTest | list[ColumnTest] | None


def _canonical_filter(spec: FilterSpec) -> str | None:
    """Any accepted filter form as one canonical predicate text (so equal filters compare equal)."""
    if spec is None or (isinstance(spec, list) and not spec):
        return None
    if isinstance(spec, ColumnTest):
        spec = [spec]
    if isinstance(spec, list):
        spec = " AND ".join(str(Comparison(t.column, t.op, t.value)) for t in spec)
    if not spec.strip():
        return None
    try:
        return str(parse_filter(spec))
    except ContractSyntaxError as exc:
        raise ValueError(exc.message) from None


def _coerce_filter(v: Any) -> str | None:
    if isinstance(v, dict):
        v = ColumnTest.model_validate(v)
    elif isinstance(v, list):
        v = [ColumnTest.model_validate(t) for t in v]
    elif v is not None and not isinstance(v, str):
        raise ValueError("a filter is a predicate text, a {column, op, value} dict or a list of them")
    return _canonical_filter(v)


class DatasetQuery(_Strict):
    """The rows and columns one dataset contributes."""

    columns: list[str | int] = Field(default_factory=list, description="names or 0-based "
                                     "indices; [] means every numeric non-id column")
    filter: str | None = Field(None, description="row filter: 'x0 > 0 AND y == 1', or "
                               "{'column', 'op', 'value'} dicts (a list means AND)")
    condition_on: list[str] | None = Field(None, description="binary columns to condition on; "
                                           "None: every binary column selected")

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, v: Any) -> str | None:
        return _coerce_filter(v)

    @field_validator("columns")
    @classmethod
    def _indices(cls, v: list[str | int]) -> list[str | int]:
        if any(isinstance(c, int) and c < 0 for c in v):
            raise ValueError("column indices start at 0")
        return v


class StatsDataConfig(_Strict):
    """Per-dataset queries plus defaults for datasets the config does not name."""

    datasets: dict[str, DatasetQuery] = Field(default_factory=dict)
    columns: list[str | int] = Field(default_factory=list)
    filter: str | None = None
    condition_on: list[str] | None = None
    batch_rows: int = Field(65_536, ge=1, le=16_777_216, description="rows read at a time")

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, v: Any) -> str | None:
        return _coerce_filter(v)

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "datasets" not in data:  # the reference SDK's flat form: {dataset: columns}
            data["datasets"] = {k: data.pop(k) for k in list(data) if k not in RESERVED}
        if isinstance(data["datasets"], Mapping):
            data["datasets"] = {name: ({"columns": q} if isinstance(q, list) else q or {})
                                for name, q in data["datasets"].items()}
        return data

    def query_for(self, dataset: str) -> DatasetQuery:
        """The query of ``dataset``: its own entry, falling back on the top-level defaults."""
        own = self.datasets.get(dataset)
        if own is None:
            return DatasetQuery(columns=self.columns, filter=self.filter,
                                condition_on=self.condition_on)
        return DatasetQuery(columns=own.columns if own.columns else self.columns,
                            filter=own.filter if own.filter is not None else self.filter,
                            condition_on=(own.condition_on if own.condition_on is not None
                                          else self.condition_on))


class StatsModelConfig(_Strict):
    """PSR contracts, what to do when a rule fails, and the privacy of filtered queries.

    ``contract`` rules have *peer* scope: each runner checks them on its own statistics before
    it shares (``send_action``) and the coordinator again on each contribution it receives
    (``receive_action``). ``merged_contract`` rules are checked once, at the coordinator, on
    the merged statistics (pooled rules such as ``COUNT(x) >= 150``): a failed merged rule fails
    the session, naming the rule (never a value).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    contract: str | None = Field(None, description="PSR contract with peer scope, one rule per "
                                 "line: checked on each runner's own statistics")
    merged_contract: str | None = Field(None, description="PSR contract with merged scope: "
                                        "checked at the coordinator on the merged statistics")
    epsilon: float = Field(1.0, gt=0, le=100, allow_inf_nan=False, description="spent on each "
                           "dataset whose query has a row filter (answered with differential "
                           "privacy); whole-dataset queries are exact and spend nothing")
    delta: float = Field(1e-6, gt=0, lt=1e-2, description="of filtered queries (Gaussian "
                         "noise); capped by the dataset's policy (1/n² by default)")
    send_action: Action = Field("block", validation_alias=AliasChoices(
        "send_action", "fed_psr_contract_snd_fail_action"), description="at a runner whose own "
        "statistics fail the contract: 'block' shares nothing, 'allow' shares with a warning")
    receive_action: Action = Field("block", validation_alias=AliasChoices(
        "receive_action", "fed_psr_contract_rcv_fail_action"), description="at the coordinator, for "
        "a contribution that fails: 'block' leaves it out of the results, 'allow' keeps it")
    smpc: bool = Field(False, validation_alias=AliasChoices("smpc", "fed_use_smpc"),
                       description="merge the peers' statistics by secure aggregation: the "
                       "coordinator and the builder see only the merged statistics (no peer(), "
                       "no receive-side contract check; peer contracts still run at each runner)")
    smpc_clip: float = Field(1e15, gt=0, allow_inf_nan=False, description="smpc: largest sum "
                             "(of squares) a silo may send; larger values are clipped, with a "
                             "warning")
    smpc_precision: float = Field(1e-10, gt=0, allow_inf_nan=False, description="smpc: the "
                                  "quantisation step of the secure sums")

    @model_validator(mode="after")
    def _smpc_range(self) -> StatsModelConfig:
        from jupyter_fed.privacy.secagg import MAX_CLIENTS, fits

        if self.smpc and not fits(MAX_CLIENTS, self.smpc_clip, self.smpc_precision):
            raise ValueError("smpc_clip / smpc_precision is too large for the secure sum's "
                             "95-bit fixed point; lower smpc_clip or raise smpc_precision")
        return self

    @field_validator("send_action", "receive_action", mode="before")
    @classmethod
    def _reference_names(cls, v: Any) -> Any:
        # accept SymetryML's values, e.g. "fed_psr_contract_snd_fail_action_allow"
        return v.rsplit("_", 1)[-1].lower() if isinstance(v, str) else v

    @cached_property
    def parsed(self) -> Contract | None:
        return parse_contract(self.contract) if self.contract and self.contract.strip() else None

    @cached_property
    def parsed_merged(self) -> Contract | None:
        text = self.merged_contract
        return parse_contract(text) if text and text.strip() else None


def parse_data_config(data: Mapping[str, Any] | None) -> StatsDataConfig:
    return parse_config(StatsDataConfig, data, "data_config")


def parse_model_config(data: Mapping[str, Any] | None) -> StatsModelConfig:
    """Validate ``model_config``; a contract that does not parse names its line and column."""
    cfg = parse_config(StatsModelConfig, data, "model_config")
    for field, parsed in (("contract", "parsed"), ("merged_contract", "parsed_merged")):
        try:
            _ = getattr(cfg, parsed)
        except ContractSyntaxError as exc:
            raise ContractSyntaxError(f"model_config.{field}: {exc.message}", exc.hint,
                                      line=exc.line, column=exc.column,
                                      expected=exc.expected) from None
    return cfg


def privacy_cost(step: str, params: dict[str, Any], facts: Mapping[str, Any]
                 ) -> dict[str, PrivacyCost]:
    """Nothing for an exact whole-dataset query; (epsilon, delta) when the query has a filter.

    A dataset whose policy is ``exact_only`` refuses filtered queries here, before any row is
    read or any budget is spent.
    """
    if step == "kinds" and "data" in facts:
        return {"data": PrivacyCost(0.0, reads=False)}  # the registered schema, no row
    if step != "compute" or "data" not in facts:
        return {}
    data = parse_data_config(params.get("data_config"))
    query = data.query_for(str(params.get("dataset") or ""))
    if not query.filter:
        return {}
    if getattr(facts["data"], "exact_only", False):
        raise PermissionDenied("this dataset answers only exact statistics of all its rows: "
                               "queries with a row filter are refused",
                               "drop the filter, or ask the custodian to register the rows you "
                               "need as a view")
    cfg = parse_model_config(params.get("model_config"))
    return {"data": PrivacyCost(cfg.epsilon, min(cfg.delta, facts["data"].delta_cap))}
