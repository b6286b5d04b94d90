"""One runner ('vault') with a small upload limit, for the security tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_fed.demo.federation import LocalFederation, RunnerProcess


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[RunnerProcess]:
    silos = {"vault": {"train": data_root / "train_silo0.parquet",
                       "test": data_root / "test.parquet"}}
    with LocalFederation(tmp_path_factory.mktemp("vault"), silos, data_root,
                         max_upload_bytes=64 * 1024) as fed:
        yield fed.processes["vault"]


@pytest.fixture()
def admin(vault: RunnerProcess) -> Iterator[object]:
    with vault.http(timeout=60) as http:
        yield http


def make_token(admin: object, user: str, role: str, scopes: list[str] | None,
               expires_days: float = 1, grant: tuple[str, ...] | None = None) -> str:
    """A fresh token via the admin REST API (creating the user if needed); a model builder is
    granted ``grant`` (default: every dataset of the runner)."""
    admin.post("/v1/users", json={"name": user, "role": role})  # 409 when it exists: fine
    if role == "model_builder":
        if grant is None:
            grant = tuple(d["name"] for d in admin.get("/v1/datasets").json())
        for dataset in grant:
            resp = admin.post("/v1/grants", json={"user": user, "dataset": dataset})
            assert resp.status_code == 201, resp.text
    resp = admin.post("/v1/tokens", json={"user": user, "scopes": scopes,
                                          "expires_days": expires_days})
    assert resp.status_code == 201, resp.text
    return resp.json()["token"]
