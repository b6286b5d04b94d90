"""Per-dataset privacy policy and the (epsilon, delta) budget ledger.

The ledger is debited in the same transaction that checks the remaining budget, before any row is
read, and once per task id, so a retried request is never charged twice and two concurrent steps
cannot both squeeze under the limit. Budgets are kept per principal and per *file*: every dataset
registered on the same file — under several names, or as views of it — draws on one budget (the
tightest any of them sets), so registering a file twice does not double what can be learnt
about its rows.

The same transaction decides whether an evaluation (a model measured on a dataset's rows: a query
like any other) is one of the principal's exact evaluations — one per training round of a
session, at most ``max_exact_evaluations`` on a file over all sessions (session ids and rounds
are the caller's to invent) — or must be charged and answered with noise (see
:meth:`Ledger.charge`).
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jupyter_fed.errors import PermissionDenied
from jupyter_fed.privacy.accounting import MAX_DELTA, PrivacyCost, delta_cap
from jupyter_fed.runner.store import RunnerStore, now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    principal TEXT NOT NULL, dataset TEXT NOT NULL, spent REAL NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (principal, dataset));
CREATE TABLE IF NOT EXISTS ledger_events (
    task_id TEXT NOT NULL, principal TEXT NOT NULL, dataset TEXT NOT NULL, epsilon REAL NOT NULL,
    at TEXT NOT NULL, PRIMARY KEY (task_id, dataset));
CREATE TABLE IF NOT EXISTS group_names (
    grp TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (grp, name));
CREATE TABLE IF NOT EXISTS fit_rounds (
    principal TEXT NOT NULL, session TEXT NOT NULL, round INTEGER NOT NULL,
    PRIMARY KEY (principal, session, round));
CREATE TABLE IF NOT EXISTS evaluations (
    principal TEXT NOT NULL, grp TEXT NOT NULL, session TEXT NOT NULL, round INTEGER NOT NULL,
    model TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (principal, grp, session, round, model));
CREATE TABLE IF NOT EXISTS exact_counts (
    principal TEXT NOT NULL, grp TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (principal, grp));
"""
_MIGRATIONS = ("ALTER TABLE ledger ADD COLUMN delta_spent REAL NOT NULL DEFAULT 0",
               "ALTER TABLE ledger_events ADD COLUMN delta REAL NOT NULL DEFAULT 0")


MAX_EXACT_EVALUATIONS = 2000
"""Default allowance of exact evaluations per principal and file: a round's exact evaluation is
a query like any other, and session ids and round numbers are the caller's to invent, so without
a count each invented round would be one more exact loss of a chosen model on the rows (twenty
sessions of a hundred gbm iterations fit; a custodian lowers it with the policy)."""


class DatasetPolicy(BaseModel):
    """What may leave the runner from one dataset; set at registration, changed by the custodian."""

    model_config = ConfigDict(extra="forbid")

    allowed_packages: list[str] | None = Field(None, description="package names; None allows all")
    public: bool = Field(False, description="every token of the runner may see and use the "
                         "dataset under this policy; otherwise only principals it is granted to "
                         "(`jupyter-fed runner grant`)")
    min_rows: int | None = Field(None, ge=1, description="fewest rows behind any contribution; "
                                 "None means number of attributes + 5")
    min_count: int = Field(10, ge=1, description="small-count threshold k: no exact group smaller "
                           "than max(k, attributes + 5); noisy bins below k are suppressed")
    epsilon_budget: float = Field(10.0, ge=0, allow_inf_nan=False, description="total "
                                  "differential-privacy epsilon each principal may spend on the "
                                  "dataset's file")
    delta_per_step: float | None = Field(None, gt=0, le=MAX_DELTA, description="largest delta one "
                                         "step may spend; None means 1/n² for n rows (never "
                                         "above 1e-5)")
    delta_budget: float | None = Field(None, gt=0, lt=1, description="total delta each principal "
                                       "may spend; None means 100 steps' worth of delta_per_step")
    require_dp: bool = Field(False, description="refuse every step that reads this dataset "
                             "without spending epsilon on it (DP-SGD, DP histograms); model "
                             "evaluations on it are refused")
    release_shap_details: bool = Field(False, description="let a vertical session's feature "
                                       "importance release per-row SHAP values of this "
                                       "dataset's columns (by default only mean |SHAP| per "
                                       "column, over at least min_rows rows, leaves)")
    exact_only: bool = Field(False, description="refuse statistics queries with a row filter "
                             "(which are otherwise answered with differential privacy)")
    evaluation_epsilon: float = Field(1.0, ge=0, allow_inf_nan=False, description="epsilon "
                                      "charged for an evaluation beyond one per training round "
                                      "of a session (its metrics are then noisy); 0 refuses it")
    max_exact_evaluations: int = Field(MAX_EXACT_EVALUATIONS, ge=0, description="exact "
                                       "evaluations (one per training round of a session) each "
                                       "principal may have on the dataset's file, over all "
                                       "sessions; beyond, evaluations are charged "
                                       "evaluation_epsilon and noisy, as any other")
    evaluation_loss_bound: float = Field(10.0, gt=0, allow_inf_nan=False, description="per-row "
                                         "loss is clipped to this in noisy evaluations")
    max_statistics_mb: float = Field(512.0, gt=0, allow_inf_nan=False, description="largest "
                                     "memory a statistics query may need; larger ones are refused")

    # -- resource limits of steps reading this dataset (None: the runner's settings) ----------
    max_step_seconds: float | None = Field(None, gt=0, description="wall time a step may take; "
                                           "overrides the runner's step_timeout")
    max_step_memory_mb: int | None = Field(None, ge=64, description="memory a step may add, in "
                                           "MiB; overrides the runner's step_memory_mb")

    def minimum_rows(self, num_columns: int) -> int:
        """Fewest rows of a dataset any step may read: max(k, min_rows or attributes + 5)."""
        return max(self.min_count, self.min_rows if self.min_rows is not None else num_columns + 5)

    def allows(self, package: str) -> bool:
        """``package`` may run here; custom code (``custom:<name>@<digest>``) when the list names
        ``custom``, ``custom:<name>`` or the full name (approval per dataset is still needed)."""
        if self.allowed_packages is None or package in self.allowed_packages:
            return True
        if package.startswith("custom:"):
            return bool({"custom", package.partition("@")[0]} & set(self.allowed_packages))
        return False

    def delta_cap(self, num_rows: int) -> float:
        """Largest delta one step may spend on a dataset of ``num_rows`` rows."""
        return delta_cap(num_rows, self.delta_per_step)

    def total_delta(self, num_rows: int) -> float:
        return self.delta_budget if self.delta_budget is not None else 100 * self.delta_cap(num_rows)


class PrivacyBudgetExceeded(PermissionDenied):
    code = "privacy_budget_exceeded"


def budget_group(path: Any) -> str:
    """The budget (and differencing) key of a dataset: its resolved file (or its object's URI),
    whatever its name."""
    return "file:" + hashlib.sha256(str(path).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Charge:
    """One debit of one step: a cost against one budget group."""

    group: str
    dataset: str
    cost: PrivacyCost
    epsilon_budget: float
    delta_budget: float


@dataclass(frozen=True)
class Evaluation:
    """A model measured on a dataset's rows in this step (see :meth:`Ledger.charge`)."""

    group: str
    dataset: str
    model: str
    """Digest of the evaluated model: measuring the same model again tells nothing new."""
    epsilon: float
    """What an evaluation beyond the allowance costs (0: refuse it)."""
    epsilon_budget: float
    delta_budget: float
    max_exact: int = MAX_EXACT_EVALUATIONS
    """Exact evaluations the principal may have on the group, over all sessions."""


class Ledger:
    """Epsilon and delta spent per principal per budget group; exact evaluations per round."""

    def __init__(self, store: RunnerStore) -> None:
        self.store = store
        store.add_schema(_SCHEMA)
        for sql in _MIGRATIONS:  # runners created before delta was tracked
            try:
                store.add_schema(sql)
            except sqlite3.OperationalError:
                pass
        with store.tx() as db:  # runners created before exact evaluations were counted
            if db.execute("SELECT 1 FROM exact_counts LIMIT 1").fetchone() is None:
                db.execute("INSERT INTO exact_counts SELECT principal, grp, COUNT(*) FROM "
                           "evaluations WHERE model NOT LIKE 'task:%' GROUP BY principal, grp")

    # -- debits -------------------------------------------------------------------------------
    def debit(self, task_id: str, principal: str, dataset: str, epsilon: float, budget: float,
              *, delta: float = 0.0, delta_budget: float = math.inf) -> float:
        """Charge one cost or refuse; returns the epsilon left. Idempotent per task id."""
        self.charge(task_id, principal, [Charge(dataset, dataset, PrivacyCost(epsilon, delta),
                                                budget, delta_budget)])
        with self.store.tx() as db:
            return budget - self._spent(db, principal, dataset)[0]

    def charge(self, task_id: str, principal: str, charges: Sequence[Charge],
               evaluations: Sequence[Evaluation] = (), *, session: str = "", round: int = 0,
               fit: bool = False) -> dict[str, str]:
        """Record a step's debits and evaluations atomically, or refuse it as a whole.

        Parameters
        ----------
        charges
            The step's DP costs, one per budget group.
        evaluations
            Models measured on datasets' rows. Exact when the principal has not measured another
            model at this (session, round) on the group and the round is a training round
            (``fit``) or the one after the session's last training round here; otherwise charged
            ``epsilon`` and answered with noise ("noisy"), or refused when ``epsilon`` is 0.
        session, round, fit
            Where the step belongs; ``fit`` records a training round of ``session``.

        Returns
        -------
        dict
            Budget group → ``"exact"`` or ``"noisy"`` for each evaluation.
        """
        with self.store.tx() as db:
            if db.execute("SELECT 1 FROM ledger_events WHERE task_id=?", (task_id,)).fetchone() \
                    or db.execute("SELECT 1 FROM evaluations WHERE model=?",
                                  (f"task:{task_id}",)).fetchone():
                return self._replayed(db, task_id, evaluations)
            if fit:
                db.execute("INSERT OR IGNORE INTO fit_rounds VALUES (?,?,?)",
                           (principal, session, round))
            totals: dict[str, list[Any]] = {}
            for c in charges:
                entry = totals.setdefault(c.group, [c.dataset, PrivacyCost(0.0), c.epsilon_budget,
                                                    c.delta_budget])
                entry[1] = entry[1] + c.cost
                entry[2], entry[3] = min(entry[2], c.epsilon_budget), min(entry[3], c.delta_budget)
            modes: dict[str, str] = {}
            for ev in evaluations:
                mode = self._evaluation_mode(db, principal, ev, session, round, fit)
                modes[ev.group] = mode
                if mode == "noisy":
                    entry = totals.setdefault(ev.group, [ev.dataset, PrivacyCost(0.0),
                                                         ev.epsilon_budget, ev.delta_budget])
                    entry[1] = entry[1] + PrivacyCost(ev.epsilon)
                db.execute("INSERT OR IGNORE INTO evaluations VALUES (?,?,?,?,?,?)",
                           (principal, ev.group, session, round,
                            ev.model if mode == "exact" else f"task:{task_id}",
                            now().isoformat()))
            for group, (dataset, cost, eps_budget, dlt_budget) in totals.items():
                self._check(db, principal, group, dataset, cost, eps_budget, dlt_budget)
            for group, (dataset, cost, _e, _d) in totals.items():
                if not cost.spends:
                    continue
                db.execute("INSERT OR IGNORE INTO group_names VALUES (?,?)", (group, dataset))
                db.execute("INSERT INTO ledger (principal, dataset, spent, updated_at, delta_spent) "
                           "VALUES (?,?,?,?,?) ON CONFLICT (principal, dataset) DO UPDATE SET "
                           "spent=spent+excluded.spent, delta_spent=delta_spent+excluded.delta_spent,"
                           " updated_at=excluded.updated_at",
                           (principal, group, cost.epsilon, now().isoformat(), cost.delta))
                db.execute("INSERT INTO ledger_events (task_id, principal, dataset, epsilon, at, "
                           "delta) VALUES (?,?,?,?,?,?)", (task_id, principal, group, cost.epsilon,
                                                          now().isoformat(), cost.delta))
            return modes

    @staticmethod
    def _replayed(db: Any, task_id: str, evaluations: Sequence[Evaluation]) -> dict[str, str]:
        """A retried task id: charged already; its evaluations keep the mode they had."""
        noisy = {r["grp"] for r in db.execute("SELECT grp FROM evaluations WHERE model=?",
                                              (f"task:{task_id}",))}
        return {ev.group: "noisy" if ev.group in noisy else "exact" for ev in evaluations}

    def _evaluation_mode(self, db: Any, principal: str, ev: Evaluation, session: str, round: int,
                         fit: bool) -> str:
        row = db.execute("SELECT model FROM evaluations WHERE principal=? AND grp=? AND session=? "
                         "AND round=? AND model NOT LIKE 'task:%'",
                         (principal, ev.group, session, round)).fetchone()
        if row is not None and row["model"] == ev.model:
            return "exact"  # the same model on the same rows: the same answer as before
        trained = db.execute("SELECT 1 FROM fit_rounds WHERE principal=? AND session=? AND round=?",
                             (principal, session, round - 1 if not fit else round)).fetchone()
        spent = False
        if row is None and trained is not None:
            used = db.execute("SELECT n FROM exact_counts WHERE principal=? AND grp=?",
                              (principal, ev.group)).fetchone()
            if used is None or used["n"] < ev.max_exact:
                db.execute("INSERT INTO exact_counts VALUES (?,?,1) ON CONFLICT (principal, grp) "
                           "DO UPDATE SET n=n+1", (principal, ev.group))
                return "exact"
            spent = True
        if ev.epsilon <= 0:
            if spent:
                raise PermissionDenied(
                    f"evaluation refused on dataset {ev.dataset!r}: its {ev.max_exact} exact "
                    "evaluations for this user are used, and this runner's policy gives no "
                    "budget for noisy ones", "ask the custodian to raise max_exact_evaluations")
            raise PermissionDenied(
                f"evaluation refused on dataset {ev.dataset!r}: one evaluation per training round "
                "of a session is allowed, and this runner's policy gives no budget for more",
                "evaluate once per round inside a training session")
        return "noisy"

    def _check(self, db: Any, principal: str, group: str, dataset: str, cost: PrivacyCost,
               eps_budget: float, dlt_budget: float) -> None:
        spent, dspent = self._spent(db, principal, group)
        if spent + cost.epsilon > eps_budget + 1e-12:
            raise PrivacyBudgetExceeded(
                f"privacy budget exceeded on dataset {dataset!r}: this step needs epsilon "
                f"{cost.epsilon:g}, {max(eps_budget - spent, 0.0):g} of {eps_budget:g} remains",
                "ask for less epsilon, or ask the custodian to raise the budget")
        if dspent + cost.delta > dlt_budget * (1 + 1e-9):
            raise PrivacyBudgetExceeded(
                f"privacy budget exceeded on dataset {dataset!r}: this step needs delta "
                f"{cost.delta:.3g}, {max(dlt_budget - dspent, 0.0):.3g} of {dlt_budget:.3g} "
                "remains", "ask the custodian to raise the dataset's delta_budget")

    @staticmethod
    def _spent(db: Any, principal: str, group: str) -> tuple[float, float]:
        row = db.execute("SELECT spent, delta_spent FROM ledger WHERE principal=? AND dataset=?",
                         (principal, group)).fetchone()
        return (float(row["spent"]), float(row["delta_spent"])) if row else (0.0, 0.0)

    # -- reports ------------------------------------------------------------------------------
    def spending(self, principal: str | None = None) -> list[dict[str, Any]]:
        """Spend per principal and budget group; ``dataset`` names the group's datasets."""
        with self.store.tx() as db:
            rows = db.execute("SELECT * FROM ledger WHERE ?1 IS NULL OR principal=?1 "
                              "ORDER BY dataset, principal", (principal,)).fetchall()
            names: dict[str, set[str]] = {}
            for r in db.execute("SELECT name, path FROM datasets"):
                names.setdefault(budget_group(r["path"]), set()).add(r["name"])
            for r in db.execute("SELECT grp, name FROM group_names"):  # also names since removed
                names.setdefault(r["grp"], set()).add(r["name"])
        out = []
        for r in rows:
            row = dict(r)
            row["group"] = row["dataset"]
            row["dataset"] = ",".join(sorted(names.get(row["dataset"], []))) or row["dataset"]
            out.append(row)
        return sorted(out, key=lambda r: (r["dataset"], r["principal"]))
