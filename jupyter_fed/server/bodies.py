"""The JSON bodies the REST API accepts, validated at the boundary.

A malformed body is refused with 422 and the offending fields in ``details`` (the same
``[{"field", "error"}]`` shape the coordinator uses for a bad session configuration), before the
coordinator sees it. Ranges and package configurations are the coordinator's to judge.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jupyter_fed.errors import ConfigError

__all__ = ["AdminBody", "InvitationBody", "JoinBody", "RunnerBody", "SessionBody",
           "SimulationBody", "TaskBody", "parse_body"]

B = TypeVar("B", bound=BaseModel)


class _Body(BaseModel):
    # strict: JSON ``true`` is not a count and ``"3"`` is not a number of rounds
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class RunnerBody(_Body):
    """``POST /runners``: connect a runner (the token stays on the server)."""

    name: str
    url: str
    token: str
    fingerprint: str | None = None


class InvitationBody(_Body):
    """``POST /invitations``: redeem a custodian's one-time invitation and keep the connection."""

    blob: str = Field(max_length=16_384)
    password: str = Field(max_length=1024)
    name: str | None = Field(None, max_length=128)


class AdminBody(_Body):
    """``POST /runners/{name}/admin``: one call to the runner's admin API, with the stored token."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    body: Any = None
    params: dict[str, Any] | None = None


class CodeBody(_Body):
    """``POST /code``: a builder's own package (source files), kept for its sessions' plans."""

    name: str = Field(max_length=64)
    files: dict[str, str] = Field(max_length=64)


class SessionBody(_Body):
    """``POST /sessions``: the arguments of ``Client.create_fl_session``, same defaults."""

    name: str
    description: str = ""
    package_name: str = "ffnet"
    min_num_clients: int = 2
    num_rounds: int = 10
    model_cfg: dict[str, Any] = Field(default_factory=dict, alias="model_config")
    data_config: dict[str, Any] = Field(default_factory=dict)
    policy: dict[str, Any] = Field(default_factory=dict)

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Coordinator.create_session``."""
        out = self.model_dump()
        out["model_config"] = out.pop("model_cfg")
        return out


class SimulationBody(_Body):
    """``POST /simulations``: the arguments of ``Client.simulate``; the rows travel as parquet
    (base64), read in the kernel, so the server reads no path a request names."""

    package_name: str
    model_cfg: dict[str, Any] = Field(default_factory=dict, alias="model_config")
    data_config: dict[str, Any] = Field(default_factory=dict)
    dataset_parquet: str = Field(description="the rows to partition: a parquet file, base64")
    test_parquet: str | None = Field(None, description="a test set every client evaluates on")
    partitions: str | list[list[int]] = "iid"
    num_clients: int | None = Field(None, ge=1, le=100_000)
    num_rounds: int = 10
    engine: Literal["local", "ray", "dask"] = "local"
    engine_options: dict[str, Any] | None = None
    seed: int = 0
    label: str | None = None
    policy: dict[str, Any] | None = None
    name: str | None = None
    description: str = ""
    min_num_clients: int | None = None
    session_policy: dict[str, Any] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``jupyter_fed.simulation.start_simulation``, rows decoded."""
        out = self.model_dump(exclude={"dataset_parquet", "test_parquet"})
        out["model_config"] = out.pop("model_cfg")
        out["dataset"] = _parquet(self.dataset_parquet, "dataset_parquet")
        out["test"] = _parquet(self.test_parquet, "test_parquet") if self.test_parquet else None
        return out


def _parquet(text: str, field: str) -> Any:
    import base64
    import binascii
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(io.BytesIO(base64.b64decode(text, validate=True)))
    except (binascii.Error, ValueError, pa.ArrowException):
        raise ConfigError(f"{field} is not a base64 parquet file", "send the rows as parquet",
                          details=[{"field": field, "error": "not a base64 parquet file"}]) \
            from None


class TaskBody(_Body):
    """One client to join: a runner (or ``null``: wherever the dataset is) and datasets by role."""

    runner: str | None = None
    client_name: str | None = None
    datasets: dict[str, str | None]
    options: dict[str, Any] = Field(default_factory=dict, description="the task's own settings "
                                    "(a vertical session's batch_size, storage_path, …)")


class JoinBody(_Body):
    """``POST /sessions/{id}/join``."""

    tasks: list[TaskBody] = Field(min_length=1)


def parse_body(raw: bytes, model: type[B]) -> B:
    """Decode and validate a request body; ``ConfigError`` (422) naming each bad field."""
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the request body is not valid JSON: {exc}",
                          "send a JSON object with Content-Type: application/json") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the request body must be a JSON object, not {type(data).__name__}",
                          "send a JSON object", details=[{"field": "body", "error": "not an object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in err["loc"]) or "body", "error": err["msg"]}
                    for err in exc.errors(include_url=False, include_input=False)]
        raise ConfigError("invalid request body: " + "; ".join(f"{p['field']}: {p['error']}"
                                                                 for p in problems),
                          "fix the fields named", details=problems) from None
