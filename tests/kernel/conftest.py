"""Run small notebooks in a real ``python3`` kernel, against the runners of ``tests/conftest.py``.

The kernel is a separate process started by nbclient, exactly as Jupyter starts one; it imports
jupyter_fed from this tree (``PYTHONPATH``) and finds the runners through environment variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbhelpers import ROOT

KERNEL = "python3"

Cell = str | tuple[str, str]
"""A code cell's source, or ``(source, "raises")`` for a cell expected to end in an error."""


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The ``python3`` kernelspec, installed for this interpreter if Jupyter lacks one."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", KERNEL],
                       check=True, capture_output=True)
    return KERNEL


@pytest.fixture(scope="session")
def kernel_env(federation: Any) -> dict[str, str]:
    """Environment of every test kernel: this tree first on the path, the test runners' addresses."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path,
            "JUPYTER_FED_TEST_RUNNERS": json.dumps(federation.runners)}


@pytest.fixture(scope="session")
def run_notebook(kernel_name: str, kernel_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
                 ) -> Callable[..., nbformat.NotebookNode]:
    """Execute cells (or a notebook file) in a fresh kernel and return the executed notebook."""

    def run(cells: Sequence[Cell] | Path, timeout: int = 120, env: dict[str, str] | None = None
            ) -> nbformat.NotebookNode:
        """``env``: variables added to the kernel's environment (say, a notebook's parameters)."""
        if isinstance(cells, Path):
            nb = nbformat.read(cells, as_version=4)
        else:
            nb = nbformat.v4.new_notebook()
            for cell in cells:
                source, mode = (cell, "") if isinstance(cell, str) else cell
                meta = {"tags": ["raises-exception"]} if mode == "raises" else {}
                nb.cells.append(nbformat.v4.new_code_cell(source, metadata=meta))
        kernel = {**kernel_env, **(env or {}),
                  "JUPYTER_FED_STATE_DIR": str(tmp_path_factory.mktemp("kernel-state"))}
        NotebookClient(nb, kernel_name=kernel_name, timeout=timeout,
                       resources={"metadata": {"path": str(ROOT)}}).execute(env=kernel)
        return nb

    return run
