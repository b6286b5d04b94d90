"""Ten runners, each with its own silo, that know the test-only ``secsum`` package.

Ten runner processes on a shared 2-core machine: each keeps one worker and skips the torch
warm-up, so the federation starts in seconds and stays light.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import jf_secsum  # noqa: F401  - registers secsum in this (coordinator) process too
import pytest
from secagg_support import NAMES

from jupyter_fed.demo.data import write_silos
from jupyter_fed.demo.federation import LocalFederation

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def silo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("secagg-data")
    write_silos(root, rows=400, clients=len(NAMES), test_rows=400, seed=11)
    return root


@pytest.fixture(scope="session")
def fed10(tmp_path_factory: pytest.TempPathFactory, silo_root: Path) -> Iterator[LocalFederation]:
    extra = {"JUPYTER_FED_PACKAGES": "jf_secsum",
             "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    silos = {name: {"train": silo_root / f"train_silo{i}.parquet",
                    "test": silo_root / "test.parquet"} for i, name in enumerate(NAMES)}
    with LocalFederation(tmp_path_factory.mktemp("secagg-runners"), silos, silo_root,
                         env=dict.fromkeys(NAMES, extra), max_workers=1, warm_workers=1,
                         warmup=False) as fed:
        yield fed


@pytest.fixture()
def all_up(fed10: LocalFederation) -> Iterator[LocalFederation]:
    """The federation with every runner up, before and after the test (tests kill some)."""
    yield fed10
    for proc in fed10.processes.values():
        if proc.proc is None or proc.proc.poll() is not None:
            proc.start()
            proc.wait_ready()
