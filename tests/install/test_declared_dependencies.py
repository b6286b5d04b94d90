"""Every import the code makes is declared, and every module imports in a clean environment.

CI runs this in a fresh virtual environment with only what ``pyproject.toml`` declares: a library
that the machine's global Python happens to have (as ``cryptography`` once was) cannot hide here.
Imports inside functions count too: they run later, in front of a user.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.metadata as md
import importlib.util
import pkgutil
import re
import sys
import tomllib
from pathlib import Path

import pytest

import jupyter_fed

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "jupyter_fed"
OPTIONAL_EXTRAS = {"dask": "jupyter_fed/runner/dask_backend.py",
                   "psi": "jupyter_fed/packages/prl/_psi.py",
                   "simulation": "jupyter_fed/simulation/engines.py"}
"""Extras a module may import from (only inside the module named)."""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _third_party(path: Path) -> set[str]:
    return {m for m in _imports(path) if m not in sys.stdlib_module_names and m != "jupyter_fed"
            and m != "__future__"}


def _requirement_name(req: str) -> str:
    return re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_requirement_name(r) for r in project["dependencies"]}
    extras = {k: {_requirement_name(r) for r in v}
              for k, v in project.get("optional-dependencies", {}).items()}
    return core, extras


@functools.cache
def _packages() -> dict[str, list[str]]:
    """Top-level module → distributions, read once: each call walks every installed file list
    (botocore's and moto's alone hold thousands), which per import took minutes in all."""
    return dict(md.packages_distributions())


def _distributions(module: str) -> set[str]:
    return {d.lower().replace("_", "-") for d in _packages().get(module, [])}


def test_every_third_party_import_is_a_declared_dependency() -> None:
    core, extras = _declared()
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        allowed = set(core)
        for extra, where in OPTIONAL_EXTRAS.items():
            if rel == where:
                allowed |= extras[extra]
        for module in sorted(_third_party(path)):
            dists = _distributions(module)
            if not dists:
                problems.append(f"{rel}: imports {module!r}, which no installed distribution "
                                "provides")
            elif not dists & allowed:
                problems.append(f"{rel}: imports {module!r} (from {', '.join(sorted(dists))}), "
                                "which pyproject.toml does not declare")
    assert not problems, "\n".join(problems)


def test_every_module_of_jupyter_fed_imports() -> None:
    failures = []
    for info in pkgutil.walk_packages(jupyter_fed.__path__, "jupyter_fed."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # report them all, not the first
            failures.append(f"{info.name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("module", ["uvloop", "httptools", "cryptography", "opendp", "sniffio"])
def test_runtime_accelerators_and_crypto_are_installed(module: str) -> None:
    """uvloop: without it every loopback response stalls ~44 ms (delayed ACK on asyncio's loop);
    sniffio: httpcore imports it on every request, and a failed import searches sys.path anew."""
    assert importlib.util.find_spec(module) is not None, f"{module} is not installed"
