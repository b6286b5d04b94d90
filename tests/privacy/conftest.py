"""Two real runners ('p0', 'p1') on loopback holding the files the privacy attacks are run on.

Each attack uses fresh principals (its own budgets and caches) and, where it changes a policy or
registers a dataset, a file or dataset of its own, so tests do not see each other's releases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from attack import TARGET_ROW, TARGET_Y, principal_tokens

from jupyter_fed.demo.federation import LocalFederation


def _frames(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    n = 2000
    tracker = pd.DataFrame({"x0": rng.permutation(n).astype(float)})
    for i in range(1, 5):
        tracker[f"x{i}"] = rng.normal(10 * i, 3, n)
    tracker["y"] = (rng.random(n) < 0.4).astype(np.int64)
    ages = np.r_[rng.integers(30, 36, 19), 97]
    people = pd.DataFrame({"age": ages.astype(np.int64)})
    m = 200
    regress = pd.DataFrame({"x0": rng.permutation(m).astype(float), "x1": rng.normal(0, 1, m),
                            "y": rng.normal(30, 5, m)})
    regress.loc[TARGET_ROW, "y"] = TARGET_Y
    pix = 600
    pixels_a = pd.DataFrame({"pix0": (rng.random(pix) < 0.5).astype(np.int64),
                             "pix1": (rng.random(pix) < 0.3).astype(np.int64),
                             "v": rng.normal(0, 1, pix)})
    pixels_b = pd.DataFrame({"pix0": rng.integers(0, 17, pix).astype(np.int64),
                             "pix1": (rng.random(pix) < 0.6).astype(np.int64),
                             "v": rng.normal(1, 1, pix)})
    small = pd.DataFrame({f"c{i}": rng.uniform(113, 282, 225) for i in range(31)})
    return {"tracker": tracker, "people": people, "regress": regress, "pixels_a": pixels_a,
            "pixels_b": pixels_b, "small": small}


@pytest.fixture(scope="session")
def privacy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("privacy-data")
    for name, df in _frames(np.random.default_rng(20261129)).items():
        df.to_parquet(root / f"{name}.parquet", index=False)
    return root


@pytest.fixture(scope="session")
def frames(privacy_root: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in privacy_root.glob("*.parquet")}


@pytest.fixture(scope="session")
def fed(tmp_path_factory: pytest.TempPathFactory, privacy_root: Path) -> Iterator[LocalFederation]:
    silos = {"p0": {n: privacy_root / f"{n}.parquet"
                    for n in ("tracker", "people", "regress", "pixels_a")},
             "p1": {n: privacy_root / f"{n}.parquet" for n in ("pixels_b", "small")}}
    with LocalFederation(tmp_path_factory.mktemp("privacy-runners"), silos, privacy_root) as f:
        yield f


@pytest.fixture()
def new_client(fed: LocalFederation, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Make SDK clients, each a fresh principal with its own embedded coordinator."""
    import jupyter_fed

    made: list[Any] = []

    def make() -> Any:
        user, runners = principal_tokens(fed)
        c = jupyter_fed.connect(embedded=True, state_dir=tmp_path / f"coord-{user}",
                                runners=runners)
        c.user, c.tokens = user, {r["name"]: r["token"] for r in runners}
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
