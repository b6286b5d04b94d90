"""The coordinator's SQLite state: runner connections, sessions, clients, rounds, metrics, logs.

A round is committed in one transaction together with its model file's path, so after a crash the
store never shows a round whose model or metrics are missing, and never counts a round twice.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jupyter_fed._sqlite import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runners (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, token TEXT NOT NULL, fingerprint TEXT,
    added_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
    package TEXT NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL, error TEXT,
    current_round INTEGER NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, started_at TEXT, finished_at TEXT);
CREATE TABLE IF NOT EXISTS clients (
    session_id TEXT NOT NULL, client_id TEXT NOT NULL, idx INTEGER NOT NULL, runner TEXT NOT NULL,
    datasets TEXT NOT NULL, status TEXT NOT NULL, error TEXT, joined_at TEXT NOT NULL,
    PRIMARY KEY (session_id, client_id));
CREATE TABLE IF NOT EXISTS rounds (
    session_id TEXT NOT NULL, round INTEGER NOT NULL, model_path TEXT, info TEXT NOT NULL,
    committed_at TEXT NOT NULL, PRIMARY KEY (session_id, round));
CREATE TABLE IF NOT EXISTS metrics (
    session_id TEXT NOT NULL, model_round INTEGER NOT NULL, federated TEXT NOT NULL,
    clients TEXT NOT NULL, PRIMARY KEY (session_id, model_round));
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, at TEXT NOT NULL,
    level TEXT NOT NULL, client TEXT, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_by_session ON logs (session_id, id);
CREATE TABLE IF NOT EXISTS artefacts (
    session_id TEXT PRIMARY KEY, round INTEGER NOT NULL, path TEXT NOT NULL, meta TEXT NOT NULL,
    committed_at TEXT NOT NULL);
"""


SESSION_METRICS = -1
"""``model_round`` under which metrics of the session as a whole (not of a model) are stored."""


def utcnow() -> str:
    return datetime.now(UTC).isoformat()


class CoordinatorStore(Database):
    """SQLite access for the coordinator; every write is its own short transaction."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        with self.tx() as db:  # state folders written before plans drove sessions
            if any(r["name"] == "kind" for r in db.execute("PRAGMA table_info(sessions)")):
                db.execute("ALTER TABLE sessions DROP COLUMN kind")
            if not any(r["name"] == "options" for r in db.execute("PRAGMA table_info(clients)")):
                db.execute("ALTER TABLE clients ADD COLUMN options TEXT")  # tasks' own settings

    # runners --------------------------------------------------------------------------------
    def put_runner(self, name: str, url: str, token: str, fingerprint: str | None = None) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO runners VALUES (?,?,?,?,?)",
                       (name, url, token, fingerprint, utcnow()))

    def runners(self) -> list[dict[str, Any]]:
        with self.tx() as db:
            return [dict(r) for r in db.execute("SELECT * FROM runners ORDER BY name")]

    def delete_runner(self, name: str) -> bool:
        with self.tx() as db:
            return db.execute("DELETE FROM runners WHERE name=?", (name,)).rowcount > 0

    # sessions -------------------------------------------------------------------------------
    def create_session(self, sid: str, name: str, description: str, package: str,
                       config: dict[str, Any]) -> None:
        t = utcnow()
        with self.tx() as db:
            db.execute("INSERT INTO sessions (id, name, description, package, status, config, "
                       "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                       (sid, name, description, package, "created", json.dumps(config), t, t))

    def session(self, sid: str) -> dict[str, Any] | None:
        with self.tx() as db:
            row = db.execute("SELECT * FROM sessions WHERE id=?", (sid,)).fetchone()
        return _session(row) if row else None

    def sessions(self) -> list[dict[str, Any]]:
        with self.tx() as db:
            return [_session(r) for r in db.execute("SELECT * FROM sessions ORDER BY created_at")]

    def set_status(self, sid: str, status: str, error: str | None = None, **extra: Any) -> None:
        sets = {"status": status, "updated_at": utcnow(), **extra}
        if error is not None:
            sets["error"] = error
        if status == "running":
            sets.setdefault("started_at", utcnow())
        if status in ("completed", "failed", "cancelled", "interrupted"):
            sets["finished_at"] = utcnow()
        with self.tx() as db:
            db.execute(f"UPDATE sessions SET {', '.join(f'{k}=?' for k in sets)} WHERE id=?",
                       (*sets.values(), sid))

    # clients --------------------------------------------------------------------------------
    def add_clients(self, sid: str, clients: list[dict[str, Any]]) -> None:
        with self.tx() as db:
            start = db.execute("SELECT COUNT(*) FROM clients WHERE session_id=?", (sid,)).fetchone()[0]
            for i, c in enumerate(clients):
                db.execute("INSERT INTO clients (session_id, client_id, idx, runner, datasets, "
                           "status, error, joined_at, options) VALUES (?,?,?,?,?,?,NULL,?,?)",
                           (sid, c["client_id"], start + i, c["runner"], json.dumps(c["datasets"]),
                            "joined", utcnow(), json.dumps(c.get("options") or {})))

    def clients(self, sid: str) -> list[dict[str, Any]]:
        with self.tx() as db:
            rows = db.execute("SELECT * FROM clients WHERE session_id=? ORDER BY idx", (sid,))
            out = [dict(r) for r in rows]
        for c in out:
            c["datasets"] = json.loads(c["datasets"])
            c["options"] = json.loads(c.get("options") or "{}")
        return out

    def set_client(self, sid: str, client_id: str, status: str, error: str | None = None) -> None:
        with self.tx() as db:
            db.execute("UPDATE clients SET status=?, error=? WHERE session_id=? AND client_id=?",
                       (status, error, sid, client_id))

    # rounds and metrics ----------------------------------------------------------------------
    def commit_round(self, sid: str, rnd: int, model_path: str | None, info: dict[str, Any],
                     metrics: tuple[int, dict[str, Any], dict[str, Any]] | None,
                     status: str | None = None,
                     artefact: tuple[str, dict[str, Any]] | None = None) -> None:
        """Record round ``rnd`` atomically: the plan's checkpoint (``model_path``), bookkeeping,
        the metrics of a model, the session's artefact (path, metadata) and a final status."""
        with self.tx() as db:
            db.execute("INSERT INTO rounds VALUES (?,?,?,?,?)",
                       (sid, rnd, model_path, json.dumps(info), utcnow()))
            if artefact is not None:
                db.execute("INSERT OR REPLACE INTO artefacts VALUES (?,?,?,?,?)",
                           (sid, rnd, artefact[0], json.dumps(artefact[1]), utcnow()))
            if metrics is not None:
                model_round, federated, per_client = metrics
                db.execute("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?)",
                           (sid, SESSION_METRICS if model_round is None else model_round,
                            json.dumps(federated), json.dumps(per_client)))
            sets = {"current_round": rnd, "updated_at": utcnow()}
            if status:
                sets["status"] = status
                if status in ("completed", "failed", "cancelled"):
                    sets["finished_at"] = utcnow()
            db.execute(f"UPDATE sessions SET {', '.join(f'{k}=?' for k in sets)} WHERE id=?",
                       (*sets.values(), sid))

    def rounds(self, sid: str) -> list[dict[str, Any]]:
        with self.tx() as db:
            rows = db.execute("SELECT * FROM rounds WHERE session_id=? ORDER BY round", (sid,))
            out = [dict(r) for r in rows]
        for r in out:
            r["info"] = json.loads(r["info"])
        return out

    def metrics(self, sid: str) -> list[dict[str, Any]]:
        """Metrics per model, in model order; session-level metrics have ``model_round`` None."""
        with self.tx() as db:
            rows = db.execute("SELECT * FROM metrics WHERE session_id=? ORDER BY model_round", (sid,))
            return [{"model_round": None if r["model_round"] == SESSION_METRICS
                     else r["model_round"], "federated": json.loads(r["federated"]),
                     "clients": json.loads(r["clients"])} for r in rows]

    # logs -----------------------------------------------------------------------------------
    def log(self, sid: str, level: str, message: str, client: str | None = None) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO logs (session_id, at, level, client, message) VALUES (?,?,?,?,?)",
                       (sid, utcnow(), level, client, message))

    def artefact(self, sid: str) -> dict[str, Any] | None:
        """The session's latest artefact: ``{round, path, meta}``."""
        with self.tx() as db:
            row = db.execute("SELECT * FROM artefacts WHERE session_id=?", (sid,)).fetchone()
        return None if row is None else {"round": row["round"], "path": row["path"],
                                         "meta": json.loads(row["meta"])}

    def warnings(self, sid: str) -> list[str]:
        """Session-level warnings (not about one client): e.g. a model that is not learning."""
        with self.tx() as db:
            rows = db.execute("SELECT message FROM logs WHERE session_id=? AND level='warning' "
                              "AND client IS NULL ORDER BY id", (sid,))
            return [r["message"] for r in rows]

    def logs(self, sid: str, after: int = 0) -> list[dict[str, Any]]:
        with self.tx() as db:
            rows = db.execute("SELECT * FROM logs WHERE session_id=? AND id>? ORDER BY id",
                              (sid, after))
            return [dict(r) for r in rows]


def _session(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["config"] = json.loads(out["config"])
    return out
