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
