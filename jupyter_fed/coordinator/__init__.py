"""Sessions, rounds, aggregation and runner connections; never sees a row of data."""

from __future__ import annotations

from jupyter_fed.coordinator.service import Coordinator

__all__ = ["Coordinator"]
