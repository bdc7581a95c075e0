"""The spool: received datasets on disk plus a SQLite (WAL) job table.

A dataset is written to a temporary file, fsynced, renamed into place and its directory
fsynced before its job row is committed, and only then is success answered, so nothing
acknowledged is lost. Jobs move through the states of :data:`TRANSITIONS`; workers and
the forwarder take work with a lease instead of deleting it, so after a crash every
unfinished job is resumed (delivery is at least once, and output UIDs are deterministic,
so a re-delivery is idempotent at PACS).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from iqgate.errors import IqgateError


class SpoolError(IqgateError):
    """The spool cannot do what was asked (illegal state change, missing job...)."""


class JobState(str, Enum):
    """Where a received instance is in the pipeline."""

    RECEIVED = "received"
    ASSESSING = "assessing"
    ASSESSED = "assessed"
    RESULTS_READY = "results_ready"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryState(str, Enum):
    """Where one output is on its way to one destination."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.RECEIVED: frozenset({JobState.ASSESSING, JobState.FAILED}),
    JobState.ASSESSING: frozenset(
        {JobState.RECEIVED, JobState.ASSESSED, JobState.RESULTS_READY, JobState.FAILED}
    ),
    JobState.ASSESSED: frozenset({JobState.RESULTS_READY, JobState.FAILED, JobState.RECEIVED}),
    JobState.RESULTS_READY: frozenset({JobState.DELIVERED, JobState.FAILED}),
    JobState.DELIVERED: frozenset(),
    JobState.FAILED: frozenset({JobState.RECEIVED}),
}
"""The allowed state changes; any other change raises :class:`SpoolError`."""

UNFINISHED = (JobState.RECEIVED, JobState.ASSESSING, JobState.ASSESSED, JobState.RESULTS_READY)

_SCHEMA = """
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
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
CREATE INDEX IF NOT EXISTS jobs_group ON jobs(series_group, state);
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

_UID = re.compile(r"^[0-9.]{1,64}$")
_SHARDS = tuple(f"{i:02x}" for i in range(256))
"""The folders under ``objects/``, made when the spool opens: a file goes to the one its
random name suffix starts with, so no C-STORE waits for a folder to be made durable."""


@dataclass(frozen=True)
class InstanceInfo:
    """What the spool records of a received instance (no patient data)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    modality: str
    calling_ae: str


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: int
    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    modality: str
    calling_ae: str
    path: Path
    size_bytes: int
    state: JobState
    verdict: str | None
    reason: str | None
    report_path: str | None
    series_group: str | None
    attempts: int
    received_at: float
    finished_at: float | None


@dataclass(frozen=True)
class Delivery:
    """One output due at one destination."""

    id: int
    job_id: int
    kind: str
    path: Path
    sop_instance_uid: str
    destination: str
    attempts: int


@dataclass(frozen=True)
class OutputFile:
    """A result file to deliver."""

    kind: str
    path: Path
    sop_instance_uid: str


@dataclass(frozen=True)
class AcceptResult:
    """Outcome of storing one instance."""

    job_id: int
    duplicate: bool


def _write_all(fd: int, parts: Sequence[bytes | bytearray | memoryview]) -> int:
    """Write every buffer to ``fd`` without copying it; the bytes written."""
    size = 0
    for part in parts:
        view = memoryview(part).cast("B")
        size += len(view)
        while view:
            view = view[os.write(fd, view) :]
    return size


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Replaced:
    """The file of a failed job that a new copy of its instance replaced."""

    path: str


@dataclass(frozen=True)
class FileRecovery:
    """What :meth:`Spool.recover_files` found on start."""

    recorded: int
    """Complete files without a job row (a power cut undid it): their jobs were recreated."""
    removed: int
    """Temporary files, duplicates and unreadable files, deleted."""


Buffer = bytes | bytearray | memoryview
PARSE_ERRORS = (
    InvalidDicomError,
    AttributeError,
    EOFError,
    OSError,
    ValueError,
    TypeError,
    KeyError,
)


class Spool:
    """Durable storage of received instances and the state of their jobs.

    Safe to share between threads: each thread gets its own SQLite connection.

    Durability (PS3.4 B.2.3: success means the SCP has the instance) rests on the
    files: :meth:`accept` writes the dataset to a temporary file, fsyncs it, renames it
    to its own unique name under ``objects/`` and fsyncs that folder before it records
    the job, so a file under ``objects/`` is always complete and durable. The file
    meta of each file carries the calling AE (Source Application Entity Title), so
    the file alone describes its job. The job table commits with
    ``synchronous=NORMAL`` (no fsync per commit; a killed process loses nothing, the
    WAL is in the page cache): a power cut may undo its last commits, and on start
    :meth:`recover_files` recreates the job of every file that has none. A state
    change that a power cut undoes repeats work with the same deterministic output
    UIDs (idempotent at PACS); no acknowledged instance is lost.
    """

    def __init__(self, root: str | Path, *, max_bytes: int, min_free_bytes: int = 0) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        for folder in (self.root, self.root / "tmp", self.root / "objects"):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        self._make_shards()
        self._db_path = self.root / "jobs.sqlite3"
        # SQLite gives the -wal and -shm files the mode of the database file: create it
        # private before the first connection, so none of them is ever world-readable.
        os.close(os.open(self._db_path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self._db_path, 0o600)
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def _make_shards(self) -> None:
        """Make the missing folders of :data:`_SHARDS`, durably."""
        objects = self.root / "objects"
        made = False
        for shard in _SHARDS:
            try:
                (objects / shard).mkdir(mode=0o700)
            except FileExistsError:
                continue
            made = True
        if made:
            _fsync_directory(objects)

    # -- database plumbing -------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._db_path, timeout=30.0, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE), committed or rolled back."""
        db = self._db()
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

    # -- receiving ---------------------------------------------------------------------
    @property
    def used_bytes(self) -> int:
        """Bytes of received instances held in the spool."""
        return int(self._db().execute("SELECT size_bytes FROM usage").fetchone()[0])

    def has_room_for(self, size_bytes: int) -> bool:
        """Whether an instance of ``size_bytes`` fits under the limit and the free-space floor."""
        if self.used_bytes + size_bytes > self.max_bytes:
            return False
        free = shutil.disk_usage(self.root).free
        return free - size_bytes >= self.min_free_bytes

    def _object_path(self, sop_instance_uid: str) -> Path:
        name = (
            sop_instance_uid
            if _UID.match(sop_instance_uid)
            else uuid.uuid5(uuid.NAMESPACE_OID, sop_instance_uid).hex
        )
        suffix = uuid.uuid4().hex[:12]
        return self.root / "objects" / suffix[:2] / f"{name}.{suffix}.dcm"

    def _write_durably(self, final: Path, parts: Sequence[Buffer]) -> int:
        """Write ``parts`` to ``final`` durably; its size. Nothing is left on error.

        The data goes to an anonymous file in ``final``'s folder (``O_TMPFILE``), is
        fsynced, and only then gets its name (``linkat``), so a name under ``objects/``
        always holds a complete file and a crash leaves no half-written one; then the
        folder is fsynced. Where ``O_TMPFILE`` is missing: a temporary file in the same
        folder, fsynced and renamed (a rename within one folder, so concurrent
        arrivals never queue on the file system's cross-folder rename lock).
        """
        folder = final.parent
        if not folder.is_dir():
            folder.mkdir(exist_ok=True, mode=0o700)
            _fsync_directory(folder.parent)
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            try:
                fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o600, dir_fd=folder_fd)
            except (AttributeError, OSError):
                return self._write_and_rename(final, parts)
            try:
                size = _write_all(fd, parts)
                os.fsync(fd)
                # linkat(AT_SYMLINK_FOLLOW): a plain link() of /proc/self/fd/N fails (EXDEV)
                os.link(f"/proc/self/fd/{fd}", final.name, dst_dir_fd=folder_fd)
            finally:
                os.close(fd)
            os.fsync(folder_fd)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        finally:
            os.close(folder_fd)
        return size

    def _write_and_rename(self, final: Path, parts: Sequence[Buffer]) -> int:
        tmp = final.with_name(f".{uuid.uuid4().hex}.part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                size = _write_all(fd, parts)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            _fsync_directory(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            raise
        return size

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
            self._db()
            .execute(
                "SELECT id, state FROM jobs WHERE sop_instance_uid = ?", (info.sop_instance_uid,)
            )
            .fetchone()
        )
        if existing is not None and existing["state"] != JobState.FAILED.value:
            return AcceptResult(existing["id"], duplicate=True)
        parts = [encoded] if isinstance(encoded, (bytes, bytearray, memoryview)) else encoded
        final = self._object_path(info.sop_instance_uid)
        size = self._write_durably(final, parts)
        try:
            with self.transaction() as db:
                result, replaced = self._record(db, final, size, info, time.time())
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        self._settle(final, result, replaced)
        return result

    def _settle(self, path: Path, result: AcceptResult, replaced: _Replaced | None) -> None:
        """After the commit: drop the file of a duplicate or of a replaced failed job."""
        if result.duplicate:
            path.unlink(missing_ok=True)
            return
        if replaced is not None:
            (self.root / replaced.path).unlink(missing_ok=True)

    def _record(
        self, db: sqlite3.Connection, path: Path, size: int, info: InstanceInfo, now: float
    ) -> tuple[AcceptResult, _Replaced | None]:
        """Insert a job row, or revive a failed job with this new file."""
        relative = str(path.relative_to(self.root))
        existing = db.execute(
            "SELECT id, state, size_bytes, path FROM jobs WHERE sop_instance_uid = ?",
            (info.sop_instance_uid,),
        ).fetchone()
        if existing is not None and existing["state"] != JobState.FAILED.value:
            return AcceptResult(existing["id"], duplicate=True), None
        if existing is not None:
            self._move(
                db,
                existing["id"],
                JobState.RECEIVED,
                reason=None,
                verdict=None,
                size_bytes=size,
                path=relative,
                calling_ae=info.calling_ae,
                received_at=now,
                finished_at=None,
            )
            replaced = _Replaced(existing["path"])
            return AcceptResult(existing["id"], duplicate=False), replaced
        cursor = db.execute(
            "INSERT INTO jobs (sop_instance_uid, sop_class_uid, study_uid, series_uid, "
            "modality, calling_ae, path, size_bytes, state, received_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ),
        )
        return AcceptResult(int(cursor.lastrowid or 0), duplicate=False), None

    def recover_files(self) -> FileRecovery:
        """On start: reconcile the files with the job table.

        Temporary files are deleted (never acknowledged). A file under ``objects/``
        without a job row is complete (it was renamed there only after its fsync): a
        power cut undid its row after the acknowledgement, or the process died before
        answering. Its job is recreated from the file's header (a failed job of the same
        SOP Instance takes the new file; an active one keeps its own and the file is
        deleted). Call only while no other process receives into this spool.
        """
        removed = 0
        for stale in [*(self.root / "tmp").iterdir(), *(self.root / "objects").glob("*/.*.part")]:
            stale.unlink(missing_ok=True)
            removed += 1
        known = {row[0] for row in self._db().execute("SELECT path FROM jobs")}
        recorded = 0
        for path in sorted((self.root / "objects").glob("*/*.dcm")):
            if str(path.relative_to(self.root)) in known:
                continue
            try:
                header = dcmread(path, stop_before_pixels=True)
                calling = header.file_meta.get("SourceApplicationEntityTitle", "") or ""
                info = InstanceInfo(
                    sop_instance_uid=str(header.SOPInstanceUID),
                    sop_class_uid=str(header.SOPClassUID),
                    study_uid=str(header.StudyInstanceUID),
                    series_uid=str(header.SeriesInstanceUID),
                    modality=str(header.get("Modality", "") or ""),
                    calling_ae=str(calling).strip(),
                )
            except PARSE_ERRORS:
                path.unlink(missing_ok=True)
                removed += 1
                continue
            size = path.stat().st_size
            with self.transaction() as db:
                result, replaced = self._record(db, path, size, info, path.stat().st_mtime)
            self._settle(path, result, replaced)
            recorded += 0 if result.duplicate else 1
            removed += 1 if result.duplicate else 0
        return FileRecovery(recorded=recorded, removed=removed)

    # -- jobs --------------------------------------------------------------------------
    def _job(self, row: sqlite3.Row) -> Job:
        return Job(
            id=row["id"],
            sop_instance_uid=row["sop_instance_uid"],
            sop_class_uid=row["sop_class_uid"],
            study_uid=row["study_uid"],
            series_uid=row["series_uid"],
            modality=row["modality"],
            calling_ae=row["calling_ae"],
            path=self.root / row["path"],
            size_bytes=row["size_bytes"],
            state=JobState(row["state"]),
            verdict=row["verdict"],
            reason=row["reason"],
            report_path=row["report_path"],
            series_group=row["series_group"],
            attempts=row["attempts"],
            received_at=row["received_at"],
            finished_at=row["finished_at"],
        )

    def job(self, job_id: int) -> Job:
        """One job by id."""
        row = self._db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise SpoolError(f"no job {job_id} in the spool at {self.root}")
        return self._job(row)

    def jobs(self, states: Sequence[JobState] | None = None) -> list[Job]:
        """Jobs in the given states (all when None), oldest first."""
        if states is None:
            rows = self._db().execute("SELECT * FROM jobs ORDER BY id").fetchall()
        else:
            marks = ",".join("?" * len(states))
            rows = (
                self._db()
                .execute(
                    f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id",
                    [s.value for s in states],
                )
                .fetchall()
            )
        return [self._job(r) for r in rows]

    def _move(self, db: sqlite3.Connection, job_id: int, to: JobState, **fields: object) -> None:
        row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise SpoolError(f"no job {job_id} in the spool at {self.root}")
        current = JobState(row["state"])
        if to not in TRANSITIONS[current]:
            raise SpoolError(f"job {job_id} cannot move from {current.value} to {to.value}")
        now = time.time()
        values = {"state": to.value, "updated_at": now, "lease_owner": None, "lease_expires": None}
        if to in (JobState.DELIVERED, JobState.FAILED):
            values["finished_at"] = now
        values |= fields
        assignments = ", ".join(f"{name} = ?" for name in values)
        db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*values.values(), job_id])

    def move(self, job_id: int, to: JobState, **fields: object) -> None:
        """Change a job's state (checked against :data:`TRANSITIONS`) and set columns."""
        with self.transaction() as db:
            self._move(db, job_id, to, **fields)

    def claim_received(self, owner: str, limit: int, lease_s: float) -> list[Job]:
        """Lease up to ``limit`` received jobs, oldest first, for assessment."""
        now = time.time()
        with self.transaction() as db:
            rows = db.execute(
                "UPDATE jobs SET state = ?, lease_owner = ?, lease_expires = ?, "
                "attempts = attempts + 1, updated_at = ? WHERE id IN (SELECT id FROM jobs "
                "WHERE state = ? ORDER BY id LIMIT ?) RETURNING *",
                (
                    JobState.ASSESSING.value,
                    owner,
                    now + lease_s,
                    now,
                    JobState.RECEIVED.value,
                    limit,
                ),
            ).fetchall()
        return sorted((self._job(r) for r in rows), key=lambda j: j.id)

    def fail(self, job_id: int, reason: str) -> None:
        """Mark a job failed with its reason."""
        self.move(job_id, JobState.FAILED, reason=reason[:1000])

    def finish_assessment(
        self,
        job_id: int,
        *,
        verdict: str,
        report_path: str | None,
        outputs: Sequence[OutputFile],
        destinations: Sequence[str],
        series_group: str | None = None,
    ) -> None:
        """Record a verdict; queue its outputs, or wait for the series when grouped."""
        with self.transaction() as db:
            self._move(
                db,
                job_id,
                JobState.ASSESSED,
                verdict=verdict,
                report_path=report_path,
                series_group=series_group,
            )
            self._queue(db, [job_id], outputs, destinations)
            if series_group is None:
                self._ready(db, [job_id])

    def _queue(
        self,
        db: sqlite3.Connection,
        job_ids: Sequence[int],
        outputs: Sequence[OutputFile],
        destinations: Sequence[str],
    ) -> None:
        now = time.time()
        for output in outputs:
            for destination in destinations:
                db.execute(
                    "INSERT OR IGNORE INTO deliveries (job_id, kind, path, sop_instance_uid, "
                    "destination, state, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_ids[0],
                        output.kind,
                        str(output.path),
                        output.sop_instance_uid,
                        destination,
                        DeliveryState.PENDING.value,
                        now,
                    ),
                )

    def _ready(self, db: sqlite3.Connection, job_ids: Sequence[int]) -> None:
        for job_id in job_ids:
            self._move(db, job_id, JobState.RESULTS_READY)
            self._finish_if_delivered(db, job_id)

    def quiet_series(self, quiet_s: float) -> list[str]:
        """Series groups with assessed jobs, none still queued, last image ``quiet_s`` old."""
        rows = (
            self._db()
            .execute(
                "SELECT g.series_group FROM jobs g WHERE g.series_group IS NOT NULL "
                "GROUP BY g.series_group HAVING SUM(g.state = ?) > 0 AND MAX(g.received_at) <= ? "
                "AND NOT EXISTS (SELECT 1 FROM jobs w WHERE w.series_uid = g.series_group "
                "AND w.state IN (?, ?))",
                (
                    JobState.ASSESSED.value,
                    time.time() - quiet_s,
                    JobState.RECEIVED.value,
                    JobState.ASSESSING.value,
                ),
            )
            .fetchall()
        )
        return [r["series_group"] for r in rows]

    def jobs_in_group(self, series_group: str, state: JobState) -> list[Job]:
        """Jobs of one series group in one state, oldest first."""
        rows = (
            self._db()
            .execute(
                "SELECT * FROM jobs WHERE series_group = ? AND state = ? ORDER BY id",
                (series_group, state.value),
            )
            .fetchall()
        )
        return [self._job(r) for r in rows]

    def finish_group(
        self, job_ids: Sequence[int], outputs: Sequence[OutputFile], destinations: Sequence[str]
    ) -> None:
        """Queue a series' shared outputs and mark its jobs' results ready."""
        with self.transaction() as db:
            self._queue(db, job_ids, outputs, destinations)
            self._ready(db, job_ids)

    # -- deliveries --------------------------------------------------------------------
    def claim_deliveries(self, destination: str, limit: int, lease_s: float) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries for one destination (results ready only)."""
        now = time.time()
        with self.transaction() as db:
            rows = db.execute(
                "UPDATE deliveries SET lease_expires = ? WHERE id IN (SELECT d.id FROM "
                "deliveries d JOIN jobs j ON j.id = d.job_id WHERE d.destination = ? "
                "AND d.state = ? AND d.next_attempt_at <= ? AND j.state = ? "
                "AND (d.lease_expires IS NULL OR d.lease_expires < ?) ORDER BY d.id LIMIT ?) "
                "RETURNING *",
                (
                    now + lease_s,
                    destination,
                    DeliveryState.PENDING.value,
                    now,
                    JobState.RESULTS_READY.value,
                    now,
                    limit,
                ),
            ).fetchall()
        return [
            Delivery(
                r["id"],
                r["job_id"],
                r["kind"],
                Path(r["path"]),
                r["sop_instance_uid"],
                r["destination"],
                r["attempts"],
            )
            for r in sorted(rows, key=lambda r: r["id"])
        ]

    def delivery_succeeded(self, delivery_id: int) -> None:
        """Record a successful C-STORE; the job is delivered when all its outputs are."""
        with self.transaction() as db:
            row = db.execute(
                "UPDATE deliveries SET state = ?, lease_expires = NULL, last_error = NULL, "
                "attempts = attempts + 1 WHERE id = ? RETURNING job_id",
                (DeliveryState.DELIVERED.value, delivery_id),
            ).fetchone()
            if row is not None:
                self._finish_if_delivered(db, row["job_id"])

    def delivery_failed(
        self, delivery_id: int, error: str, *, retry_limit: int, base_s: float, max_s: float
    ) -> bool:
        """Record a failed attempt; back off exponentially; returns True when now dead."""
        with self.transaction() as db:
            attempts = (
                db.execute(
                    "SELECT attempts FROM deliveries WHERE id = ?", (delivery_id,)
                ).fetchone()[0]
                + 1
            )
            dead = attempts >= retry_limit
            delay = min(max_s, base_s * 2 ** (attempts - 1))
            db.execute(
                "UPDATE deliveries SET attempts = ?, state = ?, next_attempt_at = ?, "
                "lease_expires = NULL, last_error = ? WHERE id = ?",
                (
                    attempts,
                    (DeliveryState.DEAD if dead else DeliveryState.PENDING).value,
                    time.time() + delay,
                    error[:500],
                    delivery_id,
                ),
            )
        return dead

    def release_delivery(self, delivery_id: int) -> None:
        """Give a leased delivery back without counting an attempt (e.g. on shutdown)."""
        with self.transaction() as db:
            db.execute("UPDATE deliveries SET lease_expires = NULL WHERE id = ?", (delivery_id,))

    def _finish_if_delivered(self, db: sqlite3.Connection, job_id: int) -> None:
        open_count = db.execute(
            "SELECT COUNT(*) FROM deliveries d JOIN jobs j ON j.id = d.job_id "
            "WHERE (d.job_id = ? OR (j.series_group IS NOT NULL AND j.series_group = "
            "(SELECT series_group FROM jobs WHERE id = ?))) AND d.state != ?",
            (job_id, job_id, DeliveryState.DELIVERED.value),
        ).fetchone()[0]
        state = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if open_count == 0 and state is not None and state["state"] == JobState.RESULTS_READY.value:
            self._move(db, job_id, JobState.DELIVERED)
            group = db.execute("SELECT series_group FROM jobs WHERE id = ?", (job_id,)).fetchone()[
                0
            ]
            if group is not None:
                for other in db.execute(
                    "SELECT id FROM jobs WHERE series_group = ? AND state = ? AND id != ?",
                    (group, JobState.RESULTS_READY.value, job_id),
                ).fetchall():
                    self._move(db, other["id"], JobState.DELIVERED)

    def dead_letters(self) -> list[Delivery]:
        """Deliveries that ran out of retries."""
        rows = (
            self._db()
            .execute(
                "SELECT * FROM deliveries WHERE state = ? ORDER BY id", (DeliveryState.DEAD.value,)
            )
            .fetchall()
        )
        return [
            Delivery(
                r["id"],
                r["job_id"],
                r["kind"],
                Path(r["path"]),
                r["sop_instance_uid"],
                r["destination"],
                r["attempts"],
            )
            for r in rows
        ]

    def deliveries_by_state(self) -> dict[tuple[str, str], int]:
        """Count of deliveries per (destination, state)."""
        rows = (
            self._db()
            .execute(
                "SELECT destination, state, COUNT(*) AS n FROM deliveries GROUP BY destination, state"
            )
            .fetchall()
        )
        return {(r["destination"], r["state"]): r["n"] for r in rows}

    # -- operations --------------------------------------------------------------------
    def resume(self) -> int:
        """On start: hand every job a dead process was assessing back to the queue."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = ?, lease_owner = NULL, lease_expires = NULL "
                "WHERE state = ?",
                (JobState.RECEIVED.value, JobState.ASSESSING.value),
            )
            db.execute("UPDATE deliveries SET lease_expires = NULL WHERE lease_expires IS NOT NULL")
        return cursor.rowcount

    def release_expired_leases(self) -> int:
        """Requeue jobs whose assessment lease ran out."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = ?, lease_owner = NULL, lease_expires = NULL "
                "WHERE state = ? AND lease_expires < ?",
                (JobState.RECEIVED.value, JobState.ASSESSING.value, time.time()),
            )
        return cursor.rowcount

    def retry(self, job_id: int | None = None) -> int:
        """Requeue failed jobs and revive dead deliveries (one job, or all when None)."""
        with self.transaction() as db:
            where, args = ("AND id = ?", [job_id]) if job_id is not None else ("", [])
            failed = db.execute(
                f"SELECT id FROM jobs WHERE state = ? {where}", [JobState.FAILED.value, *args]
            ).fetchall()
            for row in failed:
                self._move(db, row["id"], JobState.RECEIVED, reason=None, finished_at=None)
            where_d, args_d = ("AND job_id = ?", [job_id]) if job_id is not None else ("", [])
            revived = db.execute(
                f"UPDATE deliveries SET state = ?, attempts = 0, next_attempt_at = ? "
                f"WHERE state = ? {where_d}",
                [DeliveryState.PENDING.value, time.time(), DeliveryState.DEAD.value, *args_d],
            ).rowcount
        return len(failed) + revived

    def purge(
        self,
        older_than_s: float,
        *,
        states: Sequence[JobState] = (JobState.DELIVERED,),
        chunk: int = 200,
    ) -> int:
        """Remove finished jobs (delivered by default) and their spool files.

        Works in transactions of ``chunk`` jobs, so receiving never waits long for the
        write lock; each job's file is deleted before its row, so an interrupted purge
        leaves rows without files (purged again next time), never files that
        :meth:`recover_files` would take for new arrivals.
        """
        cutoff = time.time() - older_than_s
        marks = ",".join("?" * len(states))
        purged = 0
        while True:
            with self.transaction() as db:
                rows = db.execute(
                    f"DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ({marks}) "
                    "AND finished_at <= ? ORDER BY id LIMIT ?) RETURNING path, size_bytes",
                    [*(s.value for s in states), cutoff, chunk],
                ).fetchall()
                for row in rows:
                    (self.root / row["path"]).unlink(missing_ok=True)
            purged += len(rows)
            if len(rows) < chunk:
                return purged

    def counts(self) -> dict[JobState, int]:
        """Number of jobs in each state."""
        rows = self._db().execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(r["state"]): r["n"] for r in rows})
        return counts
