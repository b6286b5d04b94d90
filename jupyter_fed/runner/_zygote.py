"""Imported once by the runner's fork server, so every worker forked from it starts warm.

The fork server (``multiprocessing``'s ``forkserver``) imports this module, and torch when the
runner warms up, before it forks any worker: a new or replacement worker then starts in tens of
milliseconds instead of the seconds a fresh interpreter takes to import numpy, pyarrow, pydantic,
the packages and torch, and the workers share those pages copy-on-write. Nothing here may start a
thread or run a torch operation: a forked child inherits only the forking thread.
"""

from __future__ import annotations

import contextlib
import importlib

import numpy  # noqa: F401
import pyarrow
import pyarrow.parquet  # noqa: F401

import jupyter_fed.runner._worker
import jupyter_fed.runner.arrays
import jupyter_fed.runner.secagg  # noqa: F401
from jupyter_fed.packages import get_package, package_names


def _import_steps() -> None:
    """Import every registered package's step modules (their heavy imports stay lazy)."""
    for name in package_names():
        for target in get_package(name).steps.values():
            with contextlib.suppress(Exception):  # a broken plug-in fails in its own step
                importlib.import_module(target.partition(":")[0])


_import_steps()
with contextlib.suppress(ImportError):  # gbm's histograms (scikit-learn's compiled builder):
    # ~1 s of imports, otherwise paid by a session's first exchange
    importlib.import_module("sklearn.ensemble._hist_gradient_boosting.histogram")
