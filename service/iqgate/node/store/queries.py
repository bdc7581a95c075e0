"""Read-only questions to the store, for the node's metrics, the CLI and the soak campaign."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from iqgate.node.store.database import DATABASE_NAME, Database
from iqgate.node.store.records import Delivery, Job
from iqgate.node.store.states import DeliveryState, JobState, SpoolError


class SpoolQueries:
    """Counts, jobs and deliveries as records; nothing here writes."""

    def __init__(self, db: Database, root: Path) -> None:
        self._db = db
        self.root = root

    @classmethod
    def open(cls, root: str | Path) -> SpoolQueries:
        """Queries on the spool at ``root`` over a read-only connection (another process's
        spool, e.g. a running node's)."""
        root = Path(root)
        return cls(Database(root / DATABASE_NAME, read_only=True), root)

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()

    @property
    def used_bytes(self) -> int:
        """Bytes of received instances held in the spool."""
        return int(self._db.connection().execute("SELECT size_bytes FROM usage").fetchone()[0])

    def counts(self) -> dict[JobState, int]:
        """Number of jobs in each state."""
        rows = (
            self._db.connection()
            .execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetchall()
        )
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(r["state"]): r["n"] for r in rows})
        return counts

    def job(self, job_id: int) -> Job:
        """One job by id."""
        row = self._db.connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise SpoolError(f"no job {job_id} in the spool at {self.root}")
        return Job.from_row(row, self.root)

    def jobs(self, states: Sequence[JobState] | None = None) -> list[Job]:
        """Jobs in the given states (all when None), oldest first."""
        db = self._db.connection()
        if states is None:
            rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        else:
            marks = ",".join("?" * len(states))
            rows = db.execute(
                f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id",
                [s.value for s in states],
            ).fetchall()
        return [Job.from_row(r, self.root) for r in rows]

    def job_states(self) -> dict[str, JobState]:
        """SOP Instance UID -> state of its job."""
        rows = self._db.connection().execute("SELECT sop_instance_uid, state FROM jobs")
        return {r["sop_instance_uid"]: JobState(r["state"]) for r in rows}

    def recorded_paths(self) -> set[str]:
        """The spool-relative file paths the job table records."""
        return {r["path"] for r in self._db.connection().execute("SELECT path FROM jobs")}

    def deliveries(self, state: DeliveryState | None = None) -> list[Delivery]:
        """Deliveries (in one state, or all), oldest first."""
        db = self._db.connection()
        if state is None:
            rows = db.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
        else:
            rows = db.execute(
                "SELECT * FROM deliveries WHERE state = ? ORDER BY id", (state.value,)
            ).fetchall()
        return [Delivery.from_row(r) for r in rows]

    def dead_letters(self) -> list[Delivery]:
        """Deliveries that ran out of retries."""
        return self.deliveries(DeliveryState.DEAD)

    def deliveries_by_state(self) -> dict[tuple[str, DeliveryState], int]:
        """Count of deliveries per (destination, state)."""
        rows = (
            self._db.connection()
            .execute(
                "SELECT destination, state, COUNT(*) AS n FROM deliveries GROUP BY destination, state"
            )
            .fetchall()
        )
        return {(r["destination"], DeliveryState(r["state"])): r["n"] for r in rows}


def jobs_with_reports_since(
    db: Database, root: Path, updated_after: float, limit: int = 500
) -> list[tuple[float, Job]]:
    """Jobs with a report whose row changed at or after ``updated_after`` (seconds since
    the epoch), as ``(updated_at, job)`` oldest change first: how a reader outside the
    node (the console) follows new verdicts."""
    rows = (
        db.connection()
        .execute(
            "SELECT * FROM jobs WHERE report_path IS NOT NULL AND updated_at >= ? "
            "ORDER BY updated_at LIMIT ?",
            (updated_after, limit),
        )
        .fetchall()
    )
    return [(row["updated_at"], Job.from_row(row, root)) for row in rows]
