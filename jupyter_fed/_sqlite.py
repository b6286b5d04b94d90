"""One SQLite connection shared by an event loop and worker threads, one short transaction a write.

Used by both the runner's and the coordinator's stores (which must not import each other).
WAL with ``synchronous=NORMAL`` survives a process crash without an fsync per write; the lock
serialises the threads, and ``BEGIN IMMEDIATE`` makes each read-check-write atomic.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MEMORY = Path(":memory:")
"""A database that lives in memory, as long as its connection (a simulation's ledger)."""


class Database:
    def __init__(self, path: Path, schema: str) -> None:
        if path != MEMORY:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)

    def add_schema(self, sql: str) -> None:
        with self._lock:
            self._db.executescript(sql)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """For one SELECT: it is a transaction of its own (autocommit), so it needs neither the
        write lock ``BEGIN IMMEDIATE`` takes nor a ``COMMIT`` — a runner reads a dozen rows per
        step."""
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()
