"""The audit log: every authenticated request, append-only (no route edits or deletes it)."""

from __future__ import annotations

from typing import Any

from jupyter_fed.runner.store import RunnerStore, now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, principal TEXT, token_id TEXT,
    method TEXT NOT NULL, path TEXT NOT NULL, dataset TEXT, package TEXT, step TEXT,
    params_digest TEXT, status INTEGER NOT NULL, outcome TEXT NOT NULL, bytes_out INTEGER);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
COLUMNS = ("principal", "token_id", "method", "path", "dataset", "package", "step",
           "params_digest", "status", "outcome", "bytes_out")


class AuditLog:
    def __init__(self, store: RunnerStore) -> None:
        self.store = store
        store.add_schema(_SCHEMA)

    def record(self, **row: Any) -> None:
        status = int(row.get("status") or 0)
        row.setdefault("outcome", "ok" if status < 400 else "denied" if status in (401, 403)
                       else "error")
        with self.store.tx() as db:
            db.execute(f"INSERT INTO audit (at, {', '.join(COLUMNS)}) "
                       f"VALUES (?{', ?' * len(COLUMNS)})",
                       (now().isoformat(), *(row.get(c) for c in COLUMNS)))

    def query(self, *, principal: str | None = None, dataset: str | None = None,
              outcome: str | None = None, since: str | None = None, limit: int = 200
              ) -> list[dict[str, Any]]:
        """Newest first; every filter optional."""
        with self.store.tx() as db:
            rows = db.execute(
                "SELECT * FROM audit WHERE (?1 IS NULL OR principal=?1) AND "
                "(?2 IS NULL OR dataset LIKE '%' || ?2 || '%') AND (?3 IS NULL OR outcome=?3) AND "
                "(?4 IS NULL OR at>=?4) ORDER BY id DESC LIMIT ?5",
                (principal, dataset, outcome, since, limit)).fetchall()
        return [dict(r) for r in rows]
