"""Writing an assessment's results: JSON reports, SC overlays and TID 1500 SRs, as files.

Every result is written atomically (temporary file, fsync, rename) under
``results_dir/<study UID>/<series UID>/`` before its job records it, so a result the
spool knows of is always complete on disk. The same files are what the forwarder sends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset

from iqgate.errors import SaliencyError
from iqgate.node.ops.redaction import REDACTOR
from iqgate.node.outputs.assessment import FrameAssessment
from iqgate.node.outputs.findings import locate_finding
from iqgate.node.outputs.overlay import build_overlay
from iqgate.node.outputs.report import (
    AssessmentReport,
    ModelRef,
    OutputRefs,
    SaliencyResult,
    SourceImageRef,
    Verdict,
)
from iqgate.node.outputs.sr import build_sr
from iqgate.node.outputs.uids import OutputKind, OutputUids, derive_uid
from iqgate.node.store.records import OutputFile
from iqgate.packages import ModelCard

OverlayPolicy = Literal["flagged", "all", "none"]


@dataclass(frozen=True)
class ImageResults:
    """What was written for one received instance."""

    reports: list[AssessmentReport]
    outputs: list[OutputFile]
    report_path: Path

    @property
    def flagged(self) -> bool:
        """Whether any frame was flagged."""
        return any(r.verdict is Verdict.FLAGGED for r in self.reports)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _encode(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class ResultWriter:
    """Turns assessments into report, overlay and SR files under ``results_dir``."""

    def __init__(self, results_dir: str | Path, overlays: OverlayPolicy, method: str) -> None:
        self.results_dir = Path(results_dir)
        self.overlays = overlays
        self.method = method

    def folder(self, header: Dataset) -> Path:
        """Where the results of one source series go."""
        return self.results_dir / str(header.StudyInstanceUID) / str(header.SeriesInstanceUID)

    def _wants_overlay(self, verdict: Verdict) -> bool:
        return self.overlays == "all" or (self.overlays == "flagged" and verdict is Verdict.FLAGGED)

    def write_image(
        self,
        header: Dataset,
        frames: np.ndarray,
        card: ModelCard,
        assessments: Sequence[FrameAssessment],
        *,
        sr_per_series: bool,
        timings_ms: dict[str, float],
    ) -> ImageResults:
        """Write the reports and overlays of one instance, and its SR unless per series."""
        REDACTOR.remember_dataset(header)
        multi_frame = frames.shape[0] > 1
        folder = self.folder(header)
        sop = str(header.SOPInstanceUID)
        reports: list[AssessmentReport] = []
        outputs: list[OutputFile] = []
        for index, assessment in enumerate(assessments):
            frame_number = index + 1 if multi_frame else None
            uids = OutputUids.for_image(
                series_instance_uid=str(header.SeriesInstanceUID),
                sop_instance_uid=sop,
                model_name=card.name,
                model_version=card.version,
                frame_number=frame_number,
                sr_per_series=sr_per_series,
            )
            peak = box = None
            if assessment.saliency is not None:
                try:
                    finding = locate_finding(assessment.saliency, frames[index].shape)
                    peak, box = finding.peak_xy, finding.hotspot_box
                except SaliencyError:
                    peak = box = None
            verdict = Verdict.decide(assessment.probability, card.decision_threshold)
            overlay = self._wants_overlay(verdict)
            report = AssessmentReport(
                source=SourceImageRef.from_dataset(header, frame_number),
                model=ModelRef.from_card(card),
                probability=assessment.probability,
                threshold=card.decision_threshold,
                verdict=verdict,
                defect_class=card.classes[card.defect_class],
                explained=peak is not None,
                saliency=SaliencyResult(method=self.method, peak_xy=peak, hotspot_box=box),
                outputs=OutputRefs.from_uids(uids, overlay_written=overlay),
                timings_ms=timings_ms | assessment.timings_ms,
                created_at=datetime.now(UTC).isoformat(),
            )
            reports.append(report)
            if overlay:
                sc = build_overlay(header, frames[index], assessment.saliency, report, uids)
                path = folder / f"{uids.sc_instance}.sc.dcm"
                write_atomically(path, _encode(sc))
                outputs.append(OutputFile("sc", path, uids.sc_instance))
        report_path = folder / f"{sop}.report.json"
        write_atomically(
            report_path,
            ("[" + ",\n".join(r.model_dump_json(indent=2) for r in reports) + "]\n").encode(),
        )
        if not sr_per_series:
            outputs.append(self._write_sr([header], reports, reports_uids(reports)))
        return ImageResults(reports, outputs, report_path)

    def write_series_sr(
        self, headers: Sequence[Dataset], reports: Sequence[AssessmentReport], *, late: bool
    ) -> OutputFile:
        """One SR for the assessed images of a series; ``late`` for images after its first SR."""
        for header in headers:
            REDACTOR.remember_dataset(header)
        uids = reports_uids(reports)
        if late:
            first = reports[0].source
            uids = OutputUids(
                sc_series=uids.sc_series,
                sc_instance=uids.sc_instance,
                sr_series=uids.sr_series,
                sr_instance=derive_uid(
                    first.series_instance_uid,
                    first.sop_instance_uid,
                    reports[0].model.name,
                    reports[0].model.version,
                    OutputKind.SR_SERIES_INSTANCE.value,
                    "late",
                ),
            )
        return self._write_sr(headers, reports, uids)

    def _write_sr(
        self, headers: Sequence[Dataset], reports: Sequence[AssessmentReport], uids: OutputUids
    ) -> OutputFile:
        sr = build_sr(headers, reports, uids=uids)
        path = self.folder(headers[0]) / f"{uids.sr_instance}.sr.dcm"
        write_atomically(path, _encode(sr))
        return OutputFile("sr", path, uids.sr_instance)


def reports_uids(reports: Sequence[AssessmentReport]) -> OutputUids:
    """The SR series and instance UIDs recorded in the first report."""
    outputs = reports[0].outputs
    return OutputUids(
        sc_series=outputs.sc_series_instance_uid or "",
        sc_instance=outputs.sc_sop_instance_uid or "",
        sr_series=outputs.sr_series_instance_uid,
        sr_instance=outputs.sr_sop_instance_uid,
    )


def read_reports(path: str | Path) -> list[AssessmentReport]:
    """The reports written for one instance."""
    return [AssessmentReport.model_validate(item) for item in json.loads(Path(path).read_text())]
