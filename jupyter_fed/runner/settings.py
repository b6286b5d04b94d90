"""A runner's settings, kept as ``runner.json`` in its home folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jupyter_fed.errors import ConfigError, NotFoundError
from jupyter_fed.wire.models import check_name

SETTINGS_FILE = "runner.json"


def _prefix(text: str) -> str:
    from jupyter_fed.errors import FedError
    from jupyter_fed.runner.storage import normalize_prefix

    try:
        return normalize_prefix(text)
    except FedError as exc:
        raise ValueError(exc.message) from None


def default_home() -> Path:
    return Path(os.environ.get("JUPYTER_FED_RUNNER_HOME", Path.home() / ".jupyter-fed" / "runner"))


class RunnerSettings(BaseModel):
    """What a custodian decides once, at ``runner init``, and may edit in ``runner.json``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="how model builders see this runner")
    home: Path
    data_roots: list[Path] = Field(description="datasets may only be registered below these folders")
    data_uri_prefixes: list[str] = Field([], description="object-storage prefixes datasets may be "
                                         "registered from, e.g. s3://bucket/prefix/ (also "
                                         "gs://, az://); an object under none is refused like a "
                                         "file outside every data root")
    storage_options: dict[str, dict[str, Any]] = Field({}, description="fsspec options by URI "
                                                       "prefix (the longest that covers a "
                                                       "dataset applies), e.g. {\"s3://bucket/\": "
                                                       "{\"endpoint_url\": …, \"profile\": …}}; "
                                                       "without them the storage library reads "
                                                       "credentials from the runner's "
                                                       "environment (AWS_ACCESS_KEY_ID, …)")
    max_workers: int = Field(2, ge=1, description="package steps running at once, each in its own "
                             "worker process")
    torch_threads: int = Field(1, ge=1, description="intra-op threads per step; small models "
                               "gain nothing from more, and silos often share a host")
    max_upload_bytes: int = Field(512 * 2**20, ge=1024, description="largest request body a valid "
                                  "token may send")
    # -- the front door: what any caller, even without a token, can make the runner hold -------
    max_anonymous_body_bytes: int = Field(16 * 1024, ge=0, description="largest body of a request "
                                          "that carries no valid token (it is refused unread "
                                          "wherever a token is needed)")
    max_concurrent_uploads: int = Field(4, ge=1, description="bodies over 1 MiB (or of unknown "
                                        "length) received at once; others wait for a slot")
    header_timeout: float = Field(10.0, gt=0, description="seconds a connection may take to send "
                                  "a complete request head, including before its first request")
    body_timeout: float = Field(30.0, gt=0, description="longest pause, in seconds, between two "
                                "pieces of a request body (answered 408 after it)")
    max_connections: int = Field(2048, ge=16, description="open connections; beyond it the oldest "
                                 "ones that have not finished sending a request head are closed")
    warmup: bool = Field(True, description="import the ML libraries at start, not at the first step")
    # -- steps: worker processes, fairness and limits ---------------------------------------
    warm_workers: int = Field(1, ge=0, description="worker processes started (and warmed) with the "
                              "runner; more start on demand, up to max_workers, and stay")
    step_timeout: float = Field(3600.0, gt=0, description="seconds a step may run before its worker "
                                "is stopped (a dataset's policy may set its own)")
    step_memory_mb: int = Field(4096, ge=64, description="memory a step may add to its worker, in "
                                "MiB: larger requests are refused up front (from the package's "
                                "estimate), running steps are stopped at it")
    max_steps_per_principal: int | None = Field(None, ge=1, description="steps one principal may "
                                                "run at once; default max_workers - 1 (at least "
                                                "1), so another principal always finds a worker")
    max_queued_per_principal: int = Field(64, ge=1, description="steps one principal may have "
                                          "waiting; more are refused with 429")
    array_cache_mb: int = Field(512, ge=0, description="decoded dataset columns each worker keeps "
                                "between rounds, in MiB; training reads a larger dataset (or one "
                                "over a quarter of step_memory_mb) in streamed batches instead")
    shuffle_buffer_mb: int = Field(64, ge=1, description="rows a training step holds to shuffle "
                                   "a dataset it streams, in MiB of decoded values (see README: "
                                   "training on silos larger than memory)")
    secagg_ttl: float = Field(6 * 3600.0, gt=0, description="seconds a secure-aggregation "
                              "round's keys and shares are kept at most (they are deleted "
                              "after its unmask step anyway)")
    cancel_grace: float = Field(10.0, gt=0, description="seconds a cancelled step has to stop by "
                                "itself before its worker is stopped")
    public_url: str = Field("https://127.0.0.1:8765", description="the address model builders use; "
                            "written into invitations")

    _name = field_validator("name")(classmethod(lambda cls, v: check_name(v)))

    @field_validator("data_uri_prefixes")
    @classmethod
    def _prefixes(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(_prefix(p) for p in v))

    @field_validator("storage_options")
    @classmethod
    def _options(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {_prefix(p): options for p, options in v.items()}

    @property
    def db_path(self) -> Path:
        return self.home / "runner.db"

    @property
    def results_dir(self) -> Path:
        return self.home / "results"

    def save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / SETTINGS_FILE).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, home: Path | str) -> RunnerSettings:
        path = Path(home) / SETTINGS_FILE
        if not path.exists():
            raise NotFoundError(f"no runner at {home}", "create one with `jupyter-fed runner init`")
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except ValueError as exc:
            raise ConfigError(f"{path} is invalid: {exc}", "fix or recreate runner.json") from None
