"""The records the store keeps and returns: instances, jobs, deliveries, outputs."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from iqgate.node.store.states import JobState, JobVerdict


@dataclass(frozen=True)
class InstanceInfo:
    """What the spool records of a received instance (no patient data)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    modality: str
    calling_ae: str
    header_facts: str = ""
    """What routing reads of the header, as JSON (iqgate.routing_rules.HeaderFacts)."""


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
    verdict: JobVerdict | None
    reason: str | None
    report_path: str | None
    series_group: str | None
    attempts: int
    received_at: float
    finished_at: float | None
    header_facts: str | None = None
    """What routing reads of the header, as JSON; None for a job stored without it (or
    read, without the migration, from a spool of the earlier schema)."""

    @classmethod
    def from_row(cls, row: sqlite3.Row, root: Path) -> Job:
        """The job of a ``jobs`` row; its file path made absolute under ``root``."""
        columns = row.keys()  # a Row's own "in" looks at its values
        return cls(
            id=row["id"],
            sop_instance_uid=row["sop_instance_uid"],
            sop_class_uid=row["sop_class_uid"],
            study_uid=row["study_uid"],
            series_uid=row["series_uid"],
            modality=row["modality"],
            calling_ae=row["calling_ae"],
            path=root / row["path"],
            size_bytes=row["size_bytes"],
            state=JobState(row["state"]),
            verdict=None if row["verdict"] is None else JobVerdict(row["verdict"]),
            reason=row["reason"],
            report_path=row["report_path"],
            series_group=row["series_group"],
            attempts=row["attempts"],
            received_at=row["received_at"],
            finished_at=row["finished_at"],
            header_facts=row["header_facts"] if "header_facts" in columns else None,
        )


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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Delivery:
        """The delivery of a ``deliveries`` row."""
        return cls(
            row["id"],
            row["job_id"],
            row["kind"],
            Path(row["path"]),
            row["sop_instance_uid"],
            row["destination"],
            row["attempts"],
        )


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


@dataclass(frozen=True)
class FileRecovery:
    """What the recovery of spooled files found on start."""

    recorded: int
    """Complete files without a job row (a power cut undid it): their jobs were recreated."""
    removed: int
    """Temporary files, duplicates and unreadable files, deleted."""
