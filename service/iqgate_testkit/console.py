"""Assessed images in a spool, as the pipeline leaves them, for the console's tests.

:func:`assessed_image` stores a DICOM image in a real spool, writes a report JSON
beside it as the result writer would, and moves the job to results-ready, so the
console's follower indexes it exactly as it does a running node's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import generate_uid

from iqgate.node.outputs.report import (
    AssessmentReport,
    ModelRef,
    OutputRefs,
    SaliencyResult,
    SourceImageRef,
    Verdict,
)
from iqgate.node.store.records import InstanceInfo
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobVerdict
from iqgate_testkit.dicom_factory import write_image

THRESHOLD = 0.5


def received_image(
    spool: Spool, folder: Path, *, seed: int = 0, calling_ae: str = "SCANNER", **image: object
) -> tuple[int, Path]:
    """Store one new image in ``spool`` as the SCP would; its job id and source file."""
    source = write_image(
        folder / "sources" / f"{seed}.dcm", seed=seed, sop_uid=generate_uid(), **image
    )
    ds = dcmread(source, stop_before_pixels=True)
    info = InstanceInfo(
        ds.SOPInstanceUID,
        ds.SOPClassUID,
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.Modality,
        calling_ae,
    )
    return spool.accept(source.read_bytes(), info).job_id, source


def assessed_image(
    spool: Spool,
    results_dir: Path,
    *,
    probability: float,
    seed: int = 0,
    calling_ae: str = "SCANNER",
    model: str = "tiny-cxr",
    patient_name: str = "PHANTOM^TEST",
) -> str:
    """Store, "assess" and finish one image; its SOP Instance UID."""
    job_id, source = received_image(
        spool, results_dir, seed=seed, calling_ae=calling_ae, patient_name=patient_name
    )
    ds = dcmread(source, stop_before_pixels=True)
    verdict = Verdict.decide(probability, THRESHOLD)
    explained = verdict is Verdict.FLAGGED
    report = AssessmentReport(
        source=SourceImageRef.from_dataset(ds),
        model=ModelRef(name=model, version="0.0.1", task="cxr-foreign-object"),
        probability=probability,
        threshold=THRESHOLD,
        verdict=verdict,
        defect_class="foreign_object",
        explained=explained,
        saliency=SaliencyResult(
            method="normgrad-conv1x1 combined",
            peak_xy=(40.0, 30.0) if explained else None,
            hotspot_box=(30.0, 20.0, 50.0, 40.0) if explained else None,
        ),
        outputs=OutputRefs(
            sr_series_instance_uid=generate_uid(),
            sr_sop_instance_uid=generate_uid(),
            sc_series_instance_uid=None,
            sc_sop_instance_uid=None,
        ),
        timings_ms={},
        created_at=datetime.now(UTC).isoformat(),
    )
    folder = results_dir / ds.StudyInstanceUID / ds.SeriesInstanceUID
    folder.mkdir(parents=True, exist_ok=True)
    report_path = folder / f"{ds.SOPInstanceUID}.report.json"
    report_path.write_text(json.dumps([report.model_dump(mode="json")]))
    spool.jobs.claim_received("test", 1000, 60.0)
    spool.jobs.finish_assessment(
        job_id,
        verdict=JobVerdict(verdict.value),
        report_path=str(report_path),
        deliveries=[],
    )
    return str(ds.SOPInstanceUID)
