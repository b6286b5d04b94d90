"""Request bodies of the runner's administrative routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewUser(_Body):
    name: str = Field(max_length=128)
    role: str = Field(description="administrator, data_custodian or model_builder")


class NewToken(_Body):
    user: str = Field(max_length=128)
    scopes: list[str] | None = Field(None, description="default: the user's role")
    expires_days: float = Field(30, gt=0, le=30)
    description: str = Field("", max_length=200)


class NewInvitation(_Body):
    user: str = Field(max_length=128)
    scopes: list[str] | None = None
    expires_days: float = Field(7, gt=0, le=30)
    password: str = Field(min_length=8, max_length=200)
    url: str | None = Field(None, max_length=300, description="the URL builders reach the runner "
                            "at; default: the runner's public_url")
    datasets: list[str] = Field([], max_length=256, description="datasets granted to the user "
                                "with the invitation (policy's packages and budget)")


class NewGrant(_Body):
    user: str = Field(max_length=128)
    dataset: str = Field(max_length=128)
    packages: list[str] | None = Field(None, max_length=64, description="packages or "
                                       "package.step entries; default: what the policy allows")
    epsilon_budget: float | None = Field(None, ge=0, allow_inf_nan=False, description="the "
                                         "user's own total epsilon; default: the policy's")
    expires_days: float | None = Field(None, gt=0, le=3650)
    note: str = Field("", max_length=2000)


class NewAccessRequest(_Body):
    dataset: str = Field(max_length=128)
    packages: list[str] | None = Field(None, max_length=64)
    epsilon: float | None = Field(None, ge=0, allow_inf_nan=False)
    reason: str = Field("", max_length=4000)


class Decision(_Body):
    """A custodian's answer to a request; ``packages``/``epsilon`` replace what was asked."""

    packages: list[str] | None = Field(None, max_length=64)
    epsilon: float | None = Field(None, ge=0, allow_inf_nan=False)
    expires_days: float | None = Field(None, gt=0, le=3650)
    note: str = Field("", max_length=2000)
