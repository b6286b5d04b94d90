"""House rules the machine checks: ruff, the layer contracts of ARCHITECTURE.md (import-linter),
and that no module reaches into another subpackage's private (``_``) modules."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> list[str]:
    exe = Path(sys.executable).parent / name
    return [str(exe)] if exe.exists() else [shutil.which(name) or name]


def test_ruff_is_clean() -> None:
    out = subprocess.run([*_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_layer_contracts_hold() -> None:
    """pyproject.toml [tool.importlinter]: runner ↛ coordinator and back, core ↛ Jupyter/IPython,
    plans ↛ runner/coordinator/kernel, coordinator/server/SDK ↛ the runner's data access."""
    out = subprocess.run([*_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return []


def test_no_module_imports_another_subpackages_private_modules() -> None:
    """``jupyter_fed.x._y`` is for ``jupyter_fed.x`` alone; everyone else uses ``x``'s public face."""
    found = set()
    for path in (ROOT / "jupyter_fed").rglob("*.py"):
        here = _module(path)
        for node in ast.walk(ast.parse(path.read_text())):
            for name in _imported(node):
                parts = name.split(".")
                for i, part in enumerate(parts[1:], start=1):
                    if part.startswith("_") and not part.startswith("__"):
                        owner = ".".join(parts[:i])
                        if owner.startswith("jupyter_fed") and not (
                                here == owner or here.startswith(owner + ".")):
                            found.add(f"{here} imports {'.'.join(parts[:i + 1])}")
                        break
    assert not found, "\n".join(sorted(found))


def test_test_modules_have_unique_names() -> None:
    """pytest's default import mode keys test modules by basename: two ``test_x.py`` in different
    folders stop the whole run at collection, which only the full README command notices."""
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name in {"__init__.py", "conftest.py"}:
            continue
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(ROOT)} and {path.relative_to(ROOT)}")
        seen.setdefault(path.name, path)
    assert not clashes, clashes
