"""Print one of README.md's two set-up commands: ``demo`` or ``tests``.

The README says "Run the demo ..." and "Run the tests ..." each followed by a fenced bash block;
CI runs the block verbatim, so what a new user copies is what CI proves.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LEAD = {"demo": "Run the demo", "tests": "Run the tests"}


def command(which: str, readme: Path = Path(__file__).resolve().parents[1] / "README.md") -> str:
    text = readme.read_text()
    start = text.index(LEAD[which])
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    if block is None:
        raise SystemExit(f"README.md: no bash block after {LEAD[which]!r}")
    lines = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    return " ".join(lines)


if __name__ == "__main__":
    print(command(sys.argv[1] if len(sys.argv) > 1 else "tests"))
