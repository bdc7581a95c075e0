"""The SQLite database of the spool: schema, one connection per thread, transactions."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    sop_instance_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    modality TEXT NOT NULL,
    calling_ae TEXT NOT NULL,
    path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    state TEXT NOT NULL,
    verdict TEXT,
    reason TEXT,
    report_path TEXT,
    series_group TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    header_facts TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
CREATE INDEX IF NOT EXISTS jobs_group ON jobs(series_group, state);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs(updated_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    destination TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_expires REAL,
    last_error TEXT,
    UNIQUE(job_id, sop_instance_uid, destination)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(destination, state, next_attempt_at);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size_bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO usage VALUES (1, (SELECT COALESCE(SUM(size_bytes), 0) FROM jobs));
CREATE TRIGGER IF NOT EXISTS usage_on_insert AFTER INSERT ON jobs BEGIN
    UPDATE usage SET size_bytes = size_bytes + NEW.size_bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS usage_on_delete AFTER DELETE ON jobs BEGIN
    UPDATE usage SET size_bytes = size_bytes - OLD.size_bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS usage_on_update AFTER UPDATE OF size_bytes ON jobs BEGIN
    UPDATE usage SET size_bytes = size_bytes + NEW.size_bytes - OLD.size_bytes WHERE id = 1;
END;
"""
"""The job table, the delivery table, and the bytes the jobs hold (kept by triggers, so
that the receiving and the pipeline process see the same figure)."""

ADDED_JOB_COLUMNS = {"header_facts": "TEXT"}
"""Job columns newer than the first schema, added to an existing table when it opens."""

DATABASE_NAME = "jobs.sqlite3"


class Database:
    """The spool's SQLite file in WAL mode; safe to share between threads.

    Each thread gets its own connection. Commits use ``synchronous=NORMAL`` (no fsync
    per commit: a killed process loses nothing, a power cut may undo the last commits,
    which the spool's file recovery makes good). ``read_only`` opens the file without
    creating it or the schema, for readers outside the node (CLI, soak campaign).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        if not read_only:
            # SQLite gives the -wal and -shm files the mode of the database file: create
            # it private before the first connection, so none of them is world-readable.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
            self.connection().executescript(SCHEMA)
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Give a job table made by an earlier schema the columns added since."""
        db = self.connection()
        present = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
        for name, declaration in ADDED_JOB_COLUMNS.items():
            if name not in present:
                db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self.read_only:
                connection = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, timeout=30.0, isolation_level=None
                )
            else:
                connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute("PRAGMA foreign_keys=ON")
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE), committed or rolled back."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
