"""Per-dataset privacy policy and the differential-privacy budget ledger.

The ledger is debited in the same transaction that checks the remaining budget, before any row is
read, and once per task id, so a retried request is never charged twice and two concurrent steps
cannot both squeeze under the limit.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jupyter_fed.errors import PermissionDenied
from jupyter_fed.runner.store import RunnerStore, now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    principal TEXT NOT NULL, dataset TEXT NOT NULL, spent REAL NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (principal, dataset));
CREATE TABLE IF NOT EXISTS ledger_events (
    task_id TEXT NOT NULL, principal TEXT NOT NULL, dataset TEXT NOT NULL, epsilon REAL NOT NULL,
    at TEXT NOT NULL, PRIMARY KEY (task_id, dataset));
"""


class DatasetPolicy(BaseModel):
    """What may leave the runner from one dataset; set at registration, changed by the custodian."""

    model_config = ConfigDict(extra="forbid")

    allowed_packages: list[str] | None = Field(None, description="package names; None allows all")
    min_rows: int | None = Field(None, ge=1, description="fewest rows behind any contribution; "
                                 "None means number of attributes + 5")
    min_count: int = Field(10, ge=1, description="small-count threshold k: counts and histogram "
                           "bins below it are suppressed")
    epsilon_budget: float = Field(10.0, ge=0, description="total differential-privacy epsilon each "
                                  "principal may spend on this dataset")
    require_dp: bool = Field(False, description="refuse every step that reads this dataset "
                             "without spending epsilon on it (DP-SGD, DP histograms)")

    # -- resource limits of steps reading this dataset (None: the runner's settings) ----------
    max_step_seconds: float | None = Field(None, gt=0, description="wall time a step may take; "
                                           "overrides the runner's step_timeout")
    max_step_memory_mb: int | None = Field(None, ge=64, description="memory a step may add, in "
                                           "MiB; overrides the runner's step_memory_mb")

    def minimum_rows(self, num_columns: int) -> int:
        return self.min_rows if self.min_rows is not None else num_columns + 5

    def allows(self, package: str) -> bool:
        return self.allowed_packages is None or package in self.allowed_packages


class PrivacyBudgetExceeded(PermissionDenied):
    code = "privacy_budget_exceeded"


class Ledger:
    """Epsilon spent per principal per dataset."""

    def __init__(self, store: RunnerStore) -> None:
        self.store = store
        store.add_schema(_SCHEMA)

    def debit(self, task_id: str, principal: str, dataset: str, epsilon: float,
              budget: float) -> float:
        """Charge ``epsilon`` or refuse; returns the budget left. Idempotent per task id."""
        with self.store.tx() as db:
            if db.execute("SELECT 1 FROM ledger_events WHERE task_id=? AND dataset=?",
                          (task_id, dataset)).fetchone():
                return budget - self._spent(db, principal, dataset)
            spent = self._spent(db, principal, dataset)
            if spent + epsilon > budget + 1e-12:
                raise PrivacyBudgetExceeded(
                    f"privacy budget exceeded on dataset {dataset!r}: this step needs epsilon "
                    f"{epsilon:g}, {max(budget - spent, 0.0):g} of {budget:g} remains",
                    "ask for less epsilon, or ask the custodian to raise the budget")
            db.execute("INSERT INTO ledger VALUES (?,?,?,?) ON CONFLICT (principal, dataset) "
                       "DO UPDATE SET spent=spent+excluded.spent, updated_at=excluded.updated_at",
                       (principal, dataset, epsilon, now().isoformat()))
            db.execute("INSERT INTO ledger_events VALUES (?,?,?,?,?)",
                       (task_id, principal, dataset, epsilon, now().isoformat()))
            return budget - spent - epsilon

    @staticmethod
    def _spent(db: Any, principal: str, dataset: str) -> float:
        row = db.execute("SELECT spent FROM ledger WHERE principal=? AND dataset=?",
                         (principal, dataset)).fetchone()
        return float(row["spent"]) if row else 0.0

    def spending(self, principal: str | None = None) -> list[dict[str, Any]]:
        with self.store.tx() as db:
            rows = db.execute("SELECT * FROM ledger WHERE ?1 IS NULL OR principal=?1 "
                              "ORDER BY dataset, principal", (principal,)).fetchall()
        return [dict(r) for r in rows]
