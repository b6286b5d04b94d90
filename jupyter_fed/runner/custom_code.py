"""Code requests: a builder's own package, stored with its hash, approved per dataset by a custodian.

A request holds source text only (see :class:`~jupyter_fed.packages.custom.CodeBundle`), its
SHA-256, who submitted it, and the custodian's decision: ``pending`` → ``approved`` (for named
datasets, with a note) or ``denied``. Approving again replaces the list of datasets; a decision
is never silent — the routes and the CLI write each one to the audit log.

:meth:`CodeStore.authorize` is the one check before approved code runs: the exact digest, approved,
submitted by the principal asking, for every dataset the step would read.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from jupyter_fed.errors import ConfigError, ConflictError, NotFoundError, PermissionDenied
from jupyter_fed.packages.custom import CodeBundle, parse_custom_name
from jupyter_fed.runner.store import RunnerStore, now

__all__ = ["CodeStore", "Decision"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS code_requests (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', files TEXT NOT NULL, status TEXT NOT NULL,
    datasets TEXT NOT NULL DEFAULT '[]', reviewer TEXT, note TEXT NOT NULL DEFAULT '',
    submitted_at TEXT NOT NULL, decided_at TEXT);
CREATE INDEX IF NOT EXISTS code_requests_digest ON code_requests (digest, principal);
"""
STATUSES = ("pending", "approved", "denied")


@dataclass(frozen=True)
class Decision:
    """An approved request as a step needs it: the bundle and where it may run."""

    id: str
    bundle: CodeBundle
    datasets: tuple[str, ...]


class CodeStore:
    """Code requests in the runner's database."""

    def __init__(self, store: RunnerStore) -> None:
        self.store = store
        store.add_schema(_SCHEMA)

    def submit(self, principal: str, bundle: CodeBundle, description: str = "") -> dict[str, Any]:
        """Record a request (``pending``); the same code submitted again by the same principal
        returns the existing request instead of a copy."""
        with self.store.tx() as db:
            row = db.execute("SELECT id FROM code_requests WHERE digest=? AND principal=? AND "
                             "name=?", (bundle.digest, principal, bundle.name)).fetchone()
            if row is None:
                code_id = "code_" + secrets.token_hex(6)
                db.execute("INSERT INTO code_requests (id, principal, name, digest, description, "
                           "files, status, submitted_at) VALUES (?,?,?,?,?,?,?,?)",
                           (code_id, principal, bundle.name, bundle.digest, description[:2000],
                            json.dumps(bundle.files), "pending", now().isoformat()))
            else:
                code_id = row["id"]
        return self.get(code_id)

    def get(self, code_id: str, *, source: bool = False) -> dict[str, Any]:
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM code_requests WHERE id=?", (code_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no code request {code_id!r} on this runner",
                                "list them with `jupyter-fed runner code list`")
        return _public(dict(row), source)

    def list(self, principal: str | None = None, status: str | None = None
             ) -> list[dict[str, Any]]:
        """Newest first; ``principal`` limits to one submitter's requests."""
        with self.store.tx() as db:
            rows = db.execute("SELECT * FROM code_requests WHERE (?1 IS NULL OR principal=?1) "
                              "AND (?2 IS NULL OR status=?2) ORDER BY submitted_at DESC",
                              (principal, status)).fetchall()
        return [_public(dict(r), False) for r in rows]

    def decide(self, code_id: str, reviewer: str, *, approve: bool,
               datasets: list[str] | None = None, note: str = "") -> dict[str, Any]:
        """Approve ``code_id`` for ``datasets`` (each must be registered), or deny it."""
        names = sorted(set(datasets or []))
        if approve and not names:
            raise ConfigError("approve the code for at least one dataset",
                              "name the datasets it may run on",
                              details=[{"field": "datasets", "error": "empty"}])
        missing = [n for n in names if self.store.get_dataset(n) is None]
        if missing:
            raise NotFoundError(f"no dataset(s) {', '.join(missing)} on this runner",
                                "approve the code for registered datasets")
        self.get(code_id)
        with self.store.tx() as db:
            db.execute("UPDATE code_requests SET status=?, datasets=?, reviewer=?, note=?, "
                       "decided_at=? WHERE id=?",
                       ("approved" if approve else "denied", json.dumps(names if approve else []),
                        reviewer, note[:2000], now().isoformat(), code_id))
        return self.get(code_id)

    def authorize(self, package: str, principal: str, datasets: list[str]) -> Decision:
        """The approved request behind ``custom:<name>@<digest>`` for ``principal`` on
        ``datasets``, or ``PermissionDenied`` saying which condition failed.

        Only the submitter's own approved request counts: approval is of code *and* of who runs
        it, so another builder who learns a digest gains nothing by it.
        """
        name, digest = parse_custom_name(package)
        with self.store.tx() as db:
            rows = [dict(r) for r in db.execute(
                "SELECT * FROM code_requests WHERE digest=? AND principal=? AND name=?",
                (digest, principal, name)).fetchall()]
        if not rows:
            raise PermissionDenied(f"no code request for {name!r} with hash {digest[:12]}… from "
                                   f"{principal!r} on this runner (unsubmitted or modified code)",
                                   "submit the code with client.submit_code(...) and ask the "
                                   "custodian to approve it")
        approved = [r for r in rows if r["status"] == "approved"]
        if not approved:
            raise PermissionDenied(f"custom code {name!r} ({rows[0]['id']}) is "
                                   f"{rows[0]['status']}, not approved",
                                   "wait for the custodian's approval")
        row = approved[0]
        allowed = set(json.loads(row["datasets"]))
        outside = sorted(set(datasets) - allowed)
        if outside:
            raise PermissionDenied(f"custom code {name!r} ({row['id']}) is not approved for "
                                   f"dataset(s) {', '.join(outside)}",
                                   f"it is approved for {', '.join(sorted(allowed))}; ask the "
                                   "custodian to approve it for the others")
        bundle = CodeBundle(row["name"], json.loads(row["files"]))
        if bundle.digest != digest:  # the database was edited behind the runner's back
            raise ConflictError("stored code does not match its hash", "submit it again")
        return Decision(row["id"], bundle, tuple(sorted(allowed)))


def _public(row: dict[str, Any], source: bool) -> dict[str, Any]:
    files = json.loads(row.pop("files"))
    row["datasets"] = json.loads(row["datasets"])
    row["package"] = f"custom:{row['name']}@{row['digest']}"
    row["files"] = files if source else sorted(files)
    row["size"] = sum(len(t.encode()) for t in files.values())
    return row
