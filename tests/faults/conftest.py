"""Three runners that can be made slow, malicious, hung, killed or restarted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import jf_faults  # noqa: F401  - registers faulty_ffnet in this (coordinator) process too
import pytest

from jupyter_fed.demo.federation import LocalFederation

HERE = Path(__file__).parent
NAMES = ("silo0", "silo1", "silo2")


class Faults:
    """Writes each runner's fault mode; ``clear()`` makes every runner honest again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def file(self, name: str) -> Path:
        return self.folder / f"{name}.fault"

    def set(self, name: str, mode: str) -> None:
        self.file(name).write_text(mode)

    def clear(self) -> None:
        for name in NAMES:
            self.set(name, "")


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Faults:
    f = Faults(tmp_path_factory.mktemp("faults"))
    f.clear()
    return f


@pytest.fixture(scope="module")
def fed3(tmp_path_factory: pytest.TempPathFactory, data_root: Path,
         faults: Faults) -> Iterator[LocalFederation]:
    extra = {"JUPYTER_FED_PACKAGES": "jf_faults",
             "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    silos = {name: {f"train_{name}": data_root / f"train_silo{i % 2}.parquet",
                    "test": data_root / "test.parquet"} for i, name in enumerate(NAMES)}
    env = {name: {**extra, "JF_FAULT_FILE": str(faults.file(name))} for name in NAMES}
    with LocalFederation(tmp_path_factory.mktemp("runners3"), silos, data_root, env=env) as fed:
        yield fed


@pytest.fixture()
def healthy(fed3: LocalFederation, faults: Faults) -> Iterator[LocalFederation]:
    """The federation with every runner up and honest, before and after the test."""
    faults.clear()
    yield fed3
    faults.clear()
    for proc in fed3.processes.values():
        if proc.proc is None or proc.proc.poll() is not None:
            proc.start()
            proc.wait_ready()


@pytest.fixture()
def client3(healthy: LocalFederation, tmp_path: Path) -> Iterator[object]:
    import jupyter_fed

    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coord", runners=healthy.runners)
    yield c
    c.close()
