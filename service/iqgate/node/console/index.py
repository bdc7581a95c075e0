"""The console's own SQLite file: the worklist index and the feedback on it.

The spool forgets a job once it is delivered and purged; the console keeps what it
needs to list, show and export an assessed image: its UIDs, scanner, verdict, model,
saliency, patient name and ID (shown to logged-in users only), the paths of its report,
overlay and kept DICOM copy, and the feedback given on it. The file is private
(mode 0600). Pages are read newest first with a keyset (``id < before``) over indexed
columns, so a page costs the same with 10 rows or 10,000.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from iqgate.node.console.feedback import Box, FeedbackKind

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    sop_instance_uid TEXT NOT NULL UNIQUE,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    modality TEXT NOT NULL,
    calling_ae TEXT NOT NULL,
    station_name TEXT NOT NULL,
    study_description TEXT NOT NULL,
    patient_name TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    probability REAL NOT NULL,
    threshold REAL NOT NULL,
    verdict TEXT NOT NULL,
    method TEXT NOT NULL,
    peak TEXT,
    hotspot TEXT,
    rows INTEGER NOT NULL,
    columns INTEGER NOT NULL,
    report_path TEXT NOT NULL,
    overlay_path TEXT,
    image_path TEXT,
    assessed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_verdict ON images(verdict, id);
CREATE INDEX IF NOT EXISTS images_model ON images(model, id);
CREATE INDEX IF NOT EXISTS images_ae ON images(calling_ae, id);
CREATE INDEX IF NOT EXISTS images_station ON images(station_name, id);
CREATE INDEX IF NOT EXISTS images_time ON images(assessed_at);
CREATE INDEX IF NOT EXISTS images_study ON images(study_uid, id);
CREATE TABLE IF NOT EXISTS feedback (
    sop_instance_uid TEXT PRIMARY KEY REFERENCES images(sop_instance_uid),
    kind TEXT NOT NULL,
    boxes TEXT NOT NULL,
    user TEXT NOT NULL,
    given_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS progress (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
);
"""
INDEX_NAME = "console.sqlite3"
FEEDBACK_COUNTS = (
    "SELECT images.model, feedback.kind, COUNT(*) FROM feedback "
    "JOIN images ON images.sop_instance_uid = feedback.sop_instance_uid "
    "GROUP BY images.model, feedback.kind"
)
"""Images per model and feedback kind (for the metrics, read by another process too)."""
PAGE_SIZE = 50
RECENT = 1000
"""Newest images kept in memory for the live updates (older ones are read from the file)."""


@dataclass(frozen=True)
class Feedback:
    """What one user said about one image, and when."""

    kind: FeedbackKind
    boxes: tuple[Box, ...]
    user: str
    given_at: float


@dataclass(frozen=True)
class IndexedImage:
    """One assessed image as the console lists and shows it."""

    id: int
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    modality: str
    calling_ae: str
    station_name: str
    study_description: str
    patient_name: str
    patient_id: str
    model: str
    model_version: str
    probability: float
    threshold: float
    verdict: str
    method: str
    peak: tuple[float, float] | None
    hotspot: tuple[float, float, float, float] | None
    rows: int
    columns: int
    report_path: str
    overlay_path: str | None
    image_path: str | None
    assessed_at: float
    feedback: Feedback | None = None

    @property
    def flagged(self) -> bool:
        """Whether the gate flagged the image."""
        return self.verdict == "flagged"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> IndexedImage:
        """The image of an ``images`` row (joined with its feedback, when any)."""
        feedback = None
        if row["kind"] is not None:
            feedback = Feedback(
                FeedbackKind(row["kind"]),
                tuple(Box(*b) for b in json.loads(row["boxes"])),
                row["user"],
                row["given_at"],
            )
        values = {name: row[name] for name in cls.__dataclass_fields__ if name != "feedback"}
        values["peak"] = tuple(json.loads(row["peak"])) if row["peak"] else None
        values["hotspot"] = tuple(json.loads(row["hotspot"])) if row["hotspot"] else None
        return cls(**values, feedback=feedback)


@dataclass(frozen=True)
class WorklistFilter:
    """The worklist's filters; empty values filter nothing."""

    scanner: str = ""
    """A calling AE title or a Station Name."""
    verdict: str = ""
    model: str = ""
    study: str = ""
    """A Study Instance UID."""
    since: float | None = None
    """Only images assessed at or after this time (seconds since the epoch)."""

    def matches(self, image: IndexedImage) -> bool:
        """Whether ``image`` passes the filters (as :meth:`where` selects in SQL)."""
        return (
            (not self.scanner or self.scanner in (image.calling_ae, image.station_name))
            and (not self.verdict or image.verdict == self.verdict)
            and (not self.model or image.model == self.model)
            and (not self.study or image.study_uid == self.study)
            and (self.since is None or image.assessed_at >= self.since)
        )

    def where(self) -> tuple[str, list[object]]:
        """The SQL condition and its parameters."""
        clauses: list[str] = []
        values: list[object] = []
        if self.scanner:
            clauses.append("(images.calling_ae = ? OR images.station_name = ?)")
            values += [self.scanner, self.scanner]
        if self.verdict:
            clauses.append("images.verdict = ?")
            values.append(self.verdict)
        if self.model:
            clauses.append("images.model = ?")
            values.append(self.model)
        if self.study:
            clauses.append("images.study_uid = ?")
            values.append(self.study)
        if self.since is not None:
            clauses.append("images.assessed_at >= ?")
            values.append(self.since)
        return " AND ".join(clauses) or "1", values


@dataclass(frozen=True)
class Page:
    """One page of the worklist and the cursor of the next (older) one."""

    images: list[IndexedImage]
    older: int | None


_SELECT = (
    "SELECT images.*, feedback.kind, feedback.boxes, feedback.user, feedback.given_at "
    "FROM images LEFT JOIN feedback ON feedback.sop_instance_uid = images.sop_instance_uid"
)


class ConsoleIndex:
    """The console's SQLite file; one connection shared under a lock (queries take
    milliseconds)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self._connection = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.last_added = self.latest_id()
        """The id of the newest image, kept in memory for the live updates to poll."""
        self._recent: deque[IndexedImage] = deque(maxlen=RECENT)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def _query(self, sql: str, values: list[object] | tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection.execute(sql, values).fetchall()

    def add(self, image: IndexedImage) -> bool:
        """Index ``image`` (its ``id`` is ignored); False when it was indexed already."""
        values = {
            name: getattr(image, name)
            for name in IndexedImage.__dataclass_fields__
            if name not in ("id", "feedback")
        }
        values["peak"] = json.dumps(image.peak) if image.peak else None
        values["hotspot"] = json.dumps(image.hotspot) if image.hotspot else None
        names = ",".join(values)
        marks = ",".join(f":{name}" for name in values)
        with self._transaction() as db:
            cursor = db.execute(
                f"INSERT INTO images ({names}) VALUES ({marks}) "
                "ON CONFLICT(sop_instance_uid) DO NOTHING",
                values,
            )
            added = cursor.rowcount == 1
            if added:
                self.last_added = int(cursor.lastrowid or self.last_added)
                self._recent.append(replace(image, id=self.last_added))
        return added

    def page(
        self, filters: WorklistFilter, before: int | None = None, size: int = PAGE_SIZE
    ) -> Page:
        """Images matching ``filters``, newest first, older than the ``before`` cursor."""
        where, values = filters.where()
        if before is not None:
            where += " AND images.id < ?"
            values.append(before)
        rows = self._query(
            f"{_SELECT} WHERE {where} ORDER BY images.id DESC LIMIT ?", [*values, size + 1]
        )
        images = [IndexedImage.from_row(r) for r in rows[:size]]
        return Page(images, images[-1].id if len(rows) > size else None)

    def newer_than(self, after: int, filters: WorklistFilter) -> list[IndexedImage]:
        """Images indexed after the ``after`` id that match ``filters``, oldest first (at
        most a page); from memory when it holds them all, so that many open live streams
        cost no query each."""
        with self._lock:
            recent = list(self._recent)
        if after >= self.last_added or (recent and recent[0].id <= after + 1):
            return [i for i in recent if i.id > after and filters.matches(i)][:PAGE_SIZE]
        where, values = filters.where()
        rows = self._query(
            f"{_SELECT} WHERE images.id > ? AND {where} ORDER BY images.id LIMIT ?",
            [after, *values, PAGE_SIZE],
        )
        return [IndexedImage.from_row(r) for r in rows]

    def latest_id(self) -> int:
        """The id of the newest indexed image (0 when none)."""
        return int(self._query("SELECT COALESCE(MAX(id), 0) FROM images")[0][0])

    def image(self, sop_instance_uid: str) -> IndexedImage | None:
        """One image by its SOP Instance UID."""
        rows = self._query(f"{_SELECT} WHERE images.sop_instance_uid = ?", (sop_instance_uid,))
        return IndexedImage.from_row(rows[0]) if rows else None

    def neighbours(self, image_id: int, filters: WorklistFilter) -> tuple[str | None, str | None]:
        """SOP Instance UIDs of the next newer and next older image under ``filters``."""
        where, values = filters.where()
        newer = self._query(
            f"SELECT sop_instance_uid FROM images WHERE images.id > ? AND {where} "
            "ORDER BY images.id LIMIT 1",
            [image_id, *values],
        )
        older = self._query(
            f"SELECT sop_instance_uid FROM images WHERE images.id < ? AND {where} "
            "ORDER BY images.id DESC LIMIT 1",
            [image_id, *values],
        )
        return (newer[0][0] if newer else None, older[0][0] if older else None)

    def choices(self) -> dict[str, list[str]]:
        """The scanners (AE titles and Station Names) and models seen, for the filters."""
        scanners = self._query(
            "SELECT calling_ae AS v FROM images UNION SELECT station_name FROM images "
            "WHERE station_name != '' ORDER BY v"
        )
        models = self._query("SELECT DISTINCT model FROM images ORDER BY model")
        return {"scanners": [r[0] for r in scanners], "models": [r[0] for r in models]}

    def give_feedback(
        self, sop_instance_uid: str, kind: FeedbackKind, boxes: tuple[Box, ...], user: str
    ) -> None:
        """Record (or replace) the feedback on one image."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?) ON CONFLICT(sop_instance_uid) "
                "DO UPDATE SET kind = excluded.kind, boxes = excluded.boxes, "
                "user = excluded.user, given_at = excluded.given_at",
                (
                    sop_instance_uid,
                    kind.value,
                    json.dumps([list(b) for b in boxes]),
                    user,
                    time.time(),
                ),
            )

    def with_feedback(self) -> list[IndexedImage]:
        """Every image with feedback, oldest first."""
        rows = self._query(f"{_SELECT} WHERE feedback.kind IS NOT NULL ORDER BY images.id")
        return [IndexedImage.from_row(r) for r in rows]

    def feedback_counts(self) -> dict[tuple[str, str], int]:
        """Number of images per (model, feedback kind)."""
        rows = self._query(FEEDBACK_COUNTS)
        return {(r[0], r[1]): r[2] for r in rows}

    def forget_kept_images(self, older_than: float) -> list[str]:
        """Clear the kept source and overlay paths of images assessed before
        ``older_than`` that have no feedback; the paths cleared, for the caller to delete."""
        condition = (
            "WHERE assessed_at < ? AND (image_path IS NOT NULL OR overlay_path IS NOT NULL) "
            "AND sop_instance_uid NOT IN (SELECT sop_instance_uid FROM feedback)"
        )
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT image_path, overlay_path FROM images {condition}", (older_than,)
            ).fetchall()
            db.execute(
                f"UPDATE images SET image_path = NULL, overlay_path = NULL {condition}",
                (older_than,),
            )
        return [path for row in rows for path in row if path]

    def progress(self, name: str) -> float:
        """A follower's saved position (0 when none)."""
        rows = self._query("SELECT value FROM progress WHERE name = ?", (name,))
        return float(rows[0][0]) if rows else 0.0

    def save_progress(self, name: str, value: float) -> None:
        """Save a follower's position."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO progress VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = ?",
                (name, value, value),
            )
