"""Shared fixtures: real runner processes on loopback with deterministic synthetic silos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_fed.demo.data import write_silos
from jupyter_fed.demo.federation import LocalFederation


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_silos(root, rows=2000, clients=2, test_rows=1000)
    return root


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[LocalFederation]:
    """Two runners, ``silo0`` and ``silo1``, each holding its training silo and the test set."""
    silos = {f"silo{i}": {f"train_silo{i}": data_root / f"train_silo{i}.parquet",
                          "test": data_root / "test.parquet"} for i in range(2)}
    fed = LocalFederation(tmp_path_factory.mktemp("runners"), silos, data_root)
    with fed:
        yield fed


@pytest.fixture()
def client(federation: LocalFederation, tmp_path: Path) -> Iterator[object]:
    """An SDK client with an embedded coordinator of its own, connected to both runners."""
    import jupyter_fed

    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coordinator",
                            runners=federation.runners)
    yield c
    c.close()


@pytest.fixture()
def principal_client(federation: LocalFederation, tmp_path: Path) -> Iterator[object]:
    """A client whose tokens belong to a fresh principal: its own epsilon budgets and caches."""
    import uuid

    import jupyter_fed

    user = "p_" + uuid.uuid4().hex[:8]
    runners = []
    for proc in federation.processes.values():
        token = proc.builder_token(user)
        runners.append({"name": proc.name, "url": proc.url, "token": token,
                        "fingerprint": proc.fingerprint})
    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "principal-coord", runners=runners)
    c.user = user
    yield c
    c.close()
