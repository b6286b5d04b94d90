"""Reading executed notebooks: what a cell printed, displayed or raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SETUP = ("import json, os, jupyter_fed\n"
         "client = jupyter_fed.connect(embedded=True,\n"
         "                             runners=json.loads(os.environ['JUPYTER_FED_TEST_RUNNERS']))\n"
         "print(jupyter_fed.__file__)")
"""First cell of a test notebook: a client connected to the test runners."""


def text(cell: Any) -> str:
    """Everything a cell printed or displayed, as text (stdout, stderr, text/plain, errors)."""
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append(o["text"])
        elif o["output_type"] in ("display_data", "execute_result"):
            out.append(o["data"].get("text/plain", ""))
        elif o["output_type"] == "error":
            out.append("\n".join(o["traceback"]))
    return "".join(out)


def stdout(cell: Any) -> list[str]:
    """The non-empty lines a cell printed to stdout."""
    return [line for o in cell.get("outputs", []) if o["output_type"] == "stream"
            and o["name"] == "stdout" for line in o["text"].splitlines() if line.strip()]


def last_json(cell: Any) -> Any:
    """The last line of a cell's stdout, parsed as JSON (cells print their findings that way)."""
    return json.loads(stdout(cell)[-1])


def mimetypes(cell: Any) -> set[str]:
    return {m for o in cell.get("outputs", []) for m in o.get("data", {})}
