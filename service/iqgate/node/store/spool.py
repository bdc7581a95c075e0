"""The spool: received files and the job and delivery tables, opened together.

A dataset is written to its own file under ``objects/``, fsynced and named, and its
folder fsynced, before its job row is committed, and only then is success answered, so
nothing acknowledged is lost (PS3.4 B.2.3: success means the SCP has the instance). The
file meta of each file carries the calling AE (Source Application Entity Title), so the
file alone describes its job. The job table commits without an fsync per commit: a power
cut may undo its last commits, and on start the ingest stage's file recovery recreates
the job of every file that has none. Output UIDs are deterministic, so a state change
that a power cut undoes repeats work idempotently at PACS.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iqgate.node.store.database import DATABASE_NAME, Database
from iqgate.node.store.deliveries import DeliveryQueue
from iqgate.node.store.files import Buffer, ObjectFiles
from iqgate.node.store.jobs import JobTable, move_job
from iqgate.node.store.queries import SpoolQueries
from iqgate.node.store.records import AcceptResult, InstanceInfo
from iqgate.node.store.states import JobState


@dataclass(frozen=True)
class _Replaced:
    """The file of a failed job that a new copy of its instance replaced."""

    path: str


class Spool:
    """Durable storage of received instances, the state of their jobs and deliveries.

    ``files`` holds the received files, ``jobs`` moves jobs through their states,
    ``deliveries`` queues outputs per destination, ``query`` answers read-only questions.
    Safe to share between threads: each thread gets its own SQLite connection.
    """

    def __init__(self, root: str | Path, *, max_bytes: int, min_free_bytes: int = 0) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.files = ObjectFiles(self.root)
        self.db = Database(self.root / DATABASE_NAME)
        self.jobs = JobTable(self.db, self.root, self.remove_file)
        self.deliveries = DeliveryQueue(self.db)
        self.query = SpoolQueries(self.db, self.root)

    def close(self) -> None:
        """Close this thread's connection."""
        self.db.close()

    def remove_file(self, relative: str) -> None:
        """Delete a received file by its spool-relative path (missing is fine)."""
        (self.root / relative).unlink(missing_ok=True)

    def has_room_for(self, size_bytes: int) -> bool:
        """Whether an instance of ``size_bytes`` fits under the limit and the free-space floor."""
        if self.query.used_bytes + size_bytes > self.max_bytes:
            return False
        free = shutil.disk_usage(self.root).free
        return free - size_bytes >= self.min_free_bytes

    def accept(self, encoded: Buffer | Sequence[Buffer], info: InstanceInfo) -> AcceptResult:
        """Store an encoded DICOM file durably and record its job.

        ``encoded`` is the file's bytes, or a sequence of buffers written one after the
        other (the file meta header and the received dataset, without joining them).
        A SOP Instance UID already in the spool is kept as it is (idempotent), unless
        its job failed: then the new copy replaces it and the job starts again.
        Raises ``OSError`` or ``sqlite3.Error`` when the disk cannot take it; nothing
        of this instance is left behind then.
        """
        existing = (
            self.db.connection()
            .execute(
                "SELECT id, state FROM jobs WHERE sop_instance_uid = ?", (info.sop_instance_uid,)
            )
            .fetchone()
        )
        if existing is not None and existing["state"] != JobState.FAILED.value:
            return AcceptResult(existing["id"], duplicate=True)
        parts = [encoded] if isinstance(encoded, (bytes, bytearray, memoryview)) else encoded
        final = self.files.new_path(info.sop_instance_uid)
        size = self.files.write_durably(final, parts)
        try:
            return self.record_file(final, info, size=size, received_at=time.time())
        except BaseException:
            final.unlink(missing_ok=True)
            raise

    def record_file(
        self, path: Path, info: InstanceInfo, *, size: int, received_at: float
    ) -> AcceptResult:
        """Record the job of a complete file under ``objects/``.

        A new instance gets a job; a failed job of the same instance takes this file
        (its old file is deleted); an active one keeps its own and this file is deleted.
        """
        with self.db.transaction() as db:
            result, replaced = self._record(db, path, size, info, received_at)
        if result.duplicate:
            path.unlink(missing_ok=True)
        elif replaced is not None:
            self.remove_file(replaced.path)
        return result

    def _record(
        self, db: sqlite3.Connection, path: Path, size: int, info: InstanceInfo, now: float
    ) -> tuple[AcceptResult, _Replaced | None]:
        """Insert a job row, or revive a failed job with this new file."""
        relative = self.files.relative(path)
        existing = db.execute(
            "SELECT id, state, size_bytes, path FROM jobs WHERE sop_instance_uid = ?",
            (info.sop_instance_uid,),
        ).fetchone()
        if existing is not None and existing["state"] != JobState.FAILED.value:
            return AcceptResult(existing["id"], duplicate=True), None
        if existing is not None:
            move_job(
                db,
                existing["id"],
                JobState.RECEIVED,
                reason=None,
                verdict=None,
                size_bytes=size,
                path=relative,
                calling_ae=info.calling_ae,
                header_facts=info.header_facts or None,
                received_at=now,
                finished_at=None,
            )
            return AcceptResult(existing["id"], duplicate=False), _Replaced(existing["path"])
        cursor = db.execute(
            "INSERT INTO jobs (sop_instance_uid, sop_class_uid, study_uid, series_uid, "
            "modality, calling_ae, path, size_bytes, state, received_at, updated_at, "
            "header_facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                info.sop_instance_uid,
                info.sop_class_uid,
                info.study_uid,
                info.series_uid,
                info.modality,
                info.calling_ae,
                relative,
                size,
                JobState.RECEIVED.value,
                now,
                now,
                info.header_facts or None,
            ),
        )
        return AcceptResult(int(cursor.lastrowid or 0), duplicate=False), None
