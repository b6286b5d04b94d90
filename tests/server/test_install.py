"""After `pip install`, Jupyter lists both halves of the extension as enabled."""

from __future__ import annotations

import re
import subprocess
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _listing(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "jupyter", *args], capture_output=True, text=True,
                         timeout=120)
    return ANSI.sub("", out.stdout + out.stderr)


def test_the_server_extension_is_enabled_and_validates() -> None:
    text = _listing("server", "extension", "list")
    assert re.search(r"jupyter_fed\s+enabled", text)
    assert re.search(r"jupyter_fed [\d.]+ OK", text)


def test_the_prebuilt_lab_extension_is_enabled() -> None:
    text = _listing("labextension", "list")
    assert re.search(r"jupyter-fed v[\d.]+ enabled OK", text)
