"""The job state machine: claims with leases, checked moves, series groups, retries."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from iqgate.node.store.database import Database
from iqgate.node.store.records import Job, OutputFile
from iqgate.node.store.states import (
    DeliveryState,
    JobState,
    JobVerdict,
    SpoolError,
    check_transition,
)


def move_job(db: sqlite3.Connection, job_id: int, to: JobState, **fields: object) -> None:
    """Within a transaction: change a job's state (checked) and set columns."""
    row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise SpoolError(f"no job {job_id} in the job table")
    check_transition(job_id, JobState(row["state"]), to)
    now = time.time()
    values = {"state": to.value, "updated_at": now, "lease_owner": None, "lease_expires": None}
    if to in (JobState.DELIVERED, JobState.FAILED):
        values["finished_at"] = now
    values |= fields
    assignments = ", ".join(f"{name} = ?" for name in values)
    db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*values.values(), job_id])


def finish_if_delivered(db: sqlite3.Connection, job_id: int) -> None:
    """Within a transaction: mark a job (and its series group) delivered once every
    output of the job and its group is."""
    open_count = db.execute(
        "SELECT COUNT(*) FROM deliveries d JOIN jobs j ON j.id = d.job_id "
        "WHERE (d.job_id = ? OR (j.series_group IS NOT NULL AND j.series_group = "
        "(SELECT series_group FROM jobs WHERE id = ?))) AND d.state != ?",
        (job_id, job_id, DeliveryState.DELIVERED.value),
    ).fetchone()[0]
    row = db.execute("SELECT state, series_group FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if open_count or row is None or row["state"] != JobState.RESULTS_READY.value:
        return
    move_job(db, job_id, JobState.DELIVERED)
    if row["series_group"] is not None:
        for other in db.execute(
            "SELECT id FROM jobs WHERE series_group = ? AND state = ? AND id != ?",
            (row["series_group"], JobState.RESULTS_READY.value, job_id),
        ).fetchall():
            move_job(db, other["id"], JobState.DELIVERED)


class JobTable:
    """The jobs' moves through :data:`~iqgate.node.store.states.TRANSITIONS`.

    Workers take work with a lease instead of deleting it, so after a crash every
    unfinished job is resumed.
    """

    def __init__(self, db: Database, root: Path, remove_file: Callable[[str], None]) -> None:
        self._db = db
        self._root = root
        self._remove_file = remove_file

    def move(self, job_id: int, to: JobState, **fields: object) -> None:
        """Change a job's state (checked against the transition table) and set columns."""
        with self._db.transaction() as db:
            move_job(db, job_id, to, **fields)

    def claim_received(self, owner: str, limit: int, lease_s: float) -> list[Job]:
        """Lease up to ``limit`` received jobs, oldest first, for assessment."""
        now = time.time()
        with self._db.transaction() as db:
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
        return sorted((Job.from_row(r, self._root) for r in rows), key=lambda j: j.id)

    def fail(self, job_id: int, reason: str) -> None:
        """Mark a job failed with its reason."""
        self.move(job_id, JobState.FAILED, reason=reason[:1000])

    def finish_assessment(
        self,
        job_id: int,
        *,
        verdict: JobVerdict,
        report_path: str | None,
        deliveries: Sequence[tuple[OutputFile, str]],
        series_group: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Record a verdict (``reason``: why an image was not assessed); queue its
        ``deliveries`` ((output, destination) pairs, as the caller's rules chose), or
        wait for the series when grouped."""
        with self._db.transaction() as db:
            move_job(
                db,
                job_id,
                JobState.ASSESSED,
                verdict=verdict.value,
                report_path=report_path,
                series_group=series_group,
                reason=reason,
            )
            _queue(db, job_id, deliveries)
            if series_group is None:
                _ready(db, [job_id])

    def quiet_series(self, quiet_s: float) -> list[str]:
        """Series groups with assessed jobs, none still queued, last image ``quiet_s`` old."""
        rows = (
            self._db.connection()
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

    def in_group(self, series_group: str, state: JobState) -> list[Job]:
        """Jobs of one series group in one state, oldest first."""
        rows = (
            self._db.connection()
            .execute(
                "SELECT * FROM jobs WHERE series_group = ? AND state = ? ORDER BY id",
                (series_group, state.value),
            )
            .fetchall()
        )
        return [Job.from_row(r, self._root) for r in rows]

    def finish_group(
        self, job_ids: Sequence[int], deliveries: Sequence[tuple[OutputFile, str]]
    ) -> None:
        """Queue a series' shared outputs ((output, destination) pairs) and mark its jobs'
        results ready."""
        with self._db.transaction() as db:
            _queue(db, job_ids[0], deliveries)
            _ready(db, job_ids)

    def resume(self) -> int:
        """On start: hand every job a dead process was assessing back to the queue."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = ?, lease_owner = NULL, lease_expires = NULL "
                "WHERE state = ?",
                (JobState.RECEIVED.value, JobState.ASSESSING.value),
            )
            db.execute("UPDATE deliveries SET lease_expires = NULL WHERE lease_expires IS NOT NULL")
        return cursor.rowcount

    def release_expired_leases(self) -> int:
        """Requeue jobs whose assessment lease ran out."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = ?, lease_owner = NULL, lease_expires = NULL "
                "WHERE state = ? AND lease_expires < ?",
                (JobState.RECEIVED.value, JobState.ASSESSING.value, time.time()),
            )
        return cursor.rowcount

    def retry(self, job_id: int | None = None) -> int:
        """Requeue failed jobs and revive dead deliveries (one job, or all when None)."""
        with self._db.transaction() as db:
            where, args = ("AND id = ?", [job_id]) if job_id is not None else ("", [])
            failed = db.execute(
                f"SELECT id FROM jobs WHERE state = ? {where}", [JobState.FAILED.value, *args]
            ).fetchall()
            for row in failed:
                move_job(db, row["id"], JobState.RECEIVED, reason=None, finished_at=None)
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
        leaves rows without files (purged again next time), never files that the file
        recovery would take for new arrivals.
        """
        cutoff = time.time() - older_than_s
        marks = ",".join("?" * len(states))
        purged = 0
        while True:
            with self._db.transaction() as db:
                rows = db.execute(
                    f"DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ({marks}) "
                    "AND finished_at <= ? ORDER BY id LIMIT ?) RETURNING path, size_bytes",
                    [*(s.value for s in states), cutoff, chunk],
                ).fetchall()
                for row in rows:
                    self._remove_file(row["path"])
            purged += len(rows)
            if len(rows) < chunk:
                return purged


def _queue(
    db: sqlite3.Connection,
    job_id: int,
    deliveries: Sequence[tuple[OutputFile, str]],
) -> None:
    now = time.time()
    for output, destination in deliveries:
        db.execute(
            "INSERT OR IGNORE INTO deliveries (job_id, kind, path, sop_instance_uid, "
            "destination, state, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                output.kind,
                str(output.path),
                output.sop_instance_uid,
                destination,
                DeliveryState.PENDING.value,
                now,
            ),
        )


def _ready(db: sqlite3.Connection, job_ids: Sequence[int]) -> None:
    for job_id in job_ids:
        move_job(db, job_id, JobState.RESULTS_READY)
        finish_if_delivered(db, job_id)
