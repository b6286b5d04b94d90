"""How ``%%federate prl`` shows a finished linkage: the overlap table, in the reference's terms."""

from __future__ import annotations

from typing import Any

__all__ = ["show"]


def show(results: Any) -> list[Any]:
    """The summary line and the per-client overlap table."""
    return [repr(results), results.as_frame()]
