"""Follows the spool's jobs into the console's index.

A thread polls the spool (read-only, :func:`~iqgate.node.store.queries.jobs_with_reports_since`)
for jobs whose report is written, reads each report and the spooled file's header
(Station Name, patient name and ID, study description), keeps the DICOM file under
``images_dir`` (a hard link when the spool is on the same file system, else a copy), so
that it can be shown and exported after the spool purges it, keeps the SC overlay the
same way (the results folder may be purged too), and adds the image to the index. Kept
source files of images without feedback are removed after ``retention_s``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from iqgate.node.console.index import ConsoleIndex, IndexedImage
from iqgate.node.ops.logs import get_logger
from iqgate.node.ops.redaction import REDACTOR
from iqgate.node.outputs.report import AssessmentReport
from iqgate.node.outputs.results import read_reports
from iqgate.node.store.database import DATABASE_NAME, Database
from iqgate.node.store.queries import jobs_with_reports_since
from iqgate.node.store.records import Job

log = get_logger("console")
PROGRESS = "spool"
CLEANUP_INTERVAL_S = 60.0


def keep_file(source: Path, target: Path) -> None:
    """Make ``target`` hold ``source``'s bytes: a hard link, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        temporary = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)


def _text(header: object, keyword: str) -> str:
    return str(getattr(header, keyword, "") or "").strip()


def overlay_file(job: Job, report: AssessmentReport) -> Path | None:
    """The SC overlay the result writer put beside ``job``'s report (None: none written)."""
    if not report.outputs.sc_sop_instance_uid or not job.report_path:
        return None
    path = Path(job.report_path).parent / f"{report.outputs.sc_sop_instance_uid}.sc.dcm"
    return path if path.exists() else None


def indexed_image(
    job: Job, report: AssessmentReport, kept: Path | None, overlay: Path | None
) -> IndexedImage:
    """What the index records of ``job`` assessed as ``report``; the header is read from
    the kept copy (patient and scanner fields stay empty without one); its patient
    identifiers join this process's log redaction."""
    header = dcmread(kept, stop_before_pixels=True) if kept else None
    if header is not None:
        REDACTOR.remember_dataset(header)
    return IndexedImage(
        id=0,
        sop_instance_uid=job.sop_instance_uid,
        study_uid=job.study_uid,
        series_uid=job.series_uid,
        modality=job.modality,
        calling_ae=job.calling_ae,
        station_name=_text(header, "StationName"),
        study_description=_text(header, "StudyDescription"),
        patient_name=_text(header, "PatientName"),
        patient_id=_text(header, "PatientID"),
        model=report.model.name,
        model_version=report.model.version,
        probability=report.probability,
        threshold=report.threshold,
        verdict=report.verdict.value,
        method=report.saliency.method,
        peak=report.saliency.peak_xy,
        hotspot=report.saliency.hotspot_box,
        rows=report.source.rows,
        columns=report.source.columns,
        report_path=str(job.report_path),
        overlay_path=str(overlay) if overlay else None,
        image_path=str(kept) if kept else None,
        assessed_at=datetime.fromisoformat(report.created_at).timestamp(),
    )


class SpoolFollower:
    """Polls the spool every ``interval_s`` and indexes the newly assessed images."""

    def __init__(
        self,
        spool_dir: Path,
        index: ConsoleIndex,
        images_dir: Path,
        retention_s: float,
        interval_s: float = 0.5,
    ) -> None:
        self._spool_dir = spool_dir
        self._index = index
        self._images_dir = images_dir
        self._retention_s = retention_s
        self._interval_s = interval_s
        self._db: Database | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-follower", daemon=True)
        self._cleaned_at = 0.0

    def start(self) -> None:
        """Follow in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("console_follow_error")
            self._stop.wait(self._interval_s)
        if self._db is not None:
            self._db.close()

    def run_once(self) -> int:
        """Index what was assessed since the last call; the number of images added."""
        if self._db is None:
            if not (self._spool_dir / DATABASE_NAME).exists():
                return 0
            self._db = Database(self._spool_dir / DATABASE_NAME, read_only=True)
        since = self._index.progress(PROGRESS)
        changed = jobs_with_reports_since(self._db, self._spool_dir, since)
        added = sum(self._add(job) for _, job in changed)
        if changed:
            self._index.save_progress(PROGRESS, changed[-1][0])
        if time.monotonic() - self._cleaned_at > CLEANUP_INTERVAL_S:
            self._forget_old_copies()
        return added

    def _add(self, job: Job) -> bool:
        if self._index.image(job.sop_instance_uid) is not None or job.report_path is None:
            return False
        try:
            reports = read_reports(job.report_path)
        except (OSError, ValueError) as exc:
            log.warning(
                "console_report_unreadable",
                sop_instance_uid=job.sop_instance_uid,
                error=type(exc).__name__,
            )
            return False
        report = max(reports, key=lambda r: r.probability)
        overlay = overlay_file(job, report)
        if overlay is not None:
            kept_overlay = self._images_dir / f"{job.sop_instance_uid}.sc.dcm"
            keep_file(overlay, kept_overlay)
            overlay = kept_overlay
        kept = self._images_dir / f"{job.sop_instance_uid}.dcm"
        try:
            keep_file(job.path, kept)
            image = indexed_image(job, report, kept, overlay)
        except (OSError, InvalidDicomError):
            image = indexed_image(job, report, None, overlay)
        return self._index.add(image)

    def _forget_old_copies(self) -> None:
        self._cleaned_at = time.monotonic()
        for path in self._index.forget_kept_images(time.time() - self._retention_s):
            Path(path).unlink(missing_ok=True)
