"""The runner's SQLite state: one connection, datasets and task records.

One connection shared by the HTTP loop and the worker threads, serialised by a lock: writes are
tiny, and one file keeps the custodian's backup story simple. Accounts, the privacy ledger and the
audit log keep their tables in the same file through ``tx()`` (see accounts.py, policy.py,
audit.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jupyter_fed._sqlite import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY, path TEXT NOT NULL, info TEXT NOT NULL, registered_at TEXT NOT NULL,
    policy TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, digest TEXT NOT NULL, principal TEXT NOT NULL, spec TEXT NOT NULL,
    status TEXT NOT NULL, result_path TEXT, updated_at TEXT NOT NULL);
"""


def now() -> datetime:
    return datetime.now(UTC)


class RunnerStore(Database):
    """Thread-safe access to ``runner.db``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    # datasets -------------------------------------------------------------------------------
    def put_dataset(self, name: str, path: str, info: dict[str, Any],
                    policy: dict[str, Any] | None = None) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO datasets VALUES (?,?,?,?,?)",
                       (name, path, json.dumps(info, default=str), now().isoformat(),
                        json.dumps(policy or {})))

    def get_dataset(self, name: str) -> tuple[str, dict[str, Any]] | None:
        row = self.dataset_row(name)
        return (row[0], json.loads(row[1])) if row else None

    def dataset_row(self, name: str) -> tuple[str, str] | None:
        """(path, info as stored JSON): for a caller that parses it once per distinct text."""
        with self.read() as db:
            row = db.execute("SELECT path, info FROM datasets WHERE name=?", (name,)).fetchone()
        return (row["path"], row["info"]) if row else None

    def get_policy(self, name: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute("SELECT policy FROM datasets WHERE name=?", (name,)).fetchone()
        return json.loads(row["policy"]) if row else None

    def set_policy(self, name: str, policy: dict[str, Any]) -> bool:
        with self.tx() as db:
            return db.execute("UPDATE datasets SET policy=? WHERE name=?",
                              (json.dumps(policy), name)).rowcount > 0

    def list_datasets(self) -> list[dict[str, Any]]:
        with self.tx() as db:
            rows = db.execute("SELECT info FROM datasets ORDER BY name").fetchall()
        return [json.loads(r["info"]) for r in rows]

    def dataset_paths(self) -> list[tuple[str, str]]:
        """(name, file path) of every registered dataset."""
        with self.tx() as db:
            return [(r["name"], r["path"]) for r in db.execute("SELECT name, path FROM datasets")]

    def delete_dataset(self, name: str) -> bool:
        with self.tx() as db:
            return db.execute("DELETE FROM datasets WHERE name=?", (name,)).rowcount > 0

    # tasks ----------------------------------------------------------------------------------
    def put_task(self, task_id: str, digest: str, principal: str, spec: dict[str, Any],
                 status: dict[str, Any]) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO tasks VALUES (?,?,?,?,?,NULL,?)",
                       (task_id, digest, principal, json.dumps(spec), json.dumps(status, default=str),
                        now().isoformat()))

    def update_task(self, task_id: str, status: dict[str, Any], result_path: str | None = None) -> None:
        with self.tx() as db:
            db.execute("UPDATE tasks SET status=?, result_path=COALESCE(?, result_path), updated_at=? "
                       "WHERE id=?", (json.dumps(status, default=str), result_path,
                                      now().isoformat(), task_id))

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute("SELECT * FROM tasks WHERE id=?", (task_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["spec"], out["status"] = json.loads(out["spec"]), json.loads(out["status"])
        return out

    def namespace_task_ids(self) -> None:
        """Store task ids per principal (``principal/task_id``); rows from before are moved."""
        with self.tx() as db:
            db.execute("UPDATE tasks SET id = principal || '/' || id WHERE instr(id, '/') = 0")

    def find_task(self, task_id: str) -> str | None:
        """The key of the newest task with this id, whoever submitted it (for administrators)."""
        with self.tx() as db:
            row = db.execute("SELECT id FROM tasks WHERE substr(id, instr(id, '/') + 1) = ? "
                             "ORDER BY updated_at DESC LIMIT 1", (task_id,)).fetchone()
        return row["id"] if row else None

    def unfinished_tasks(self) -> list[dict[str, Any]]:
        with self.tx() as db:
            rows = db.execute("SELECT id, status FROM tasks WHERE json_extract(status, '$.state') "
                              "IN ('queued', 'running')").fetchall()
        return [{"id": r["id"], "status": json.loads(r["status"])} for r in rows]
