"""`import jupyter_fed` stays light: no torch, scikit-learn or matplotlib."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "sklearn", "matplotlib")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_jupyter_fed_loads_no_heavy_library() -> None:
    assert _loaded_after("import jupyter_fed") == set()


def test_sdk_and_coordinator_import_no_heavy_library() -> None:
    code = ("import jupyter_fed.client, jupyter_fed.coordinator, jupyter_fed.packages.ffnet.plan\n"
            "from jupyter_fed.packages import get_package; get_package('ffnet').load_plan()")
    assert _loaded_after(code) == set()
