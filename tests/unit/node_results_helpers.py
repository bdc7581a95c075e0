"""Small DICOM sources, reports and a dciodvfy runner for the node result tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from iqgate.node.outputs.report import (
    AssessmentReport,
    ModelRef,
    OutputRefs,
    SaliencyResult,
    SourceImageRef,
    Verdict,
)
from iqgate.node.outputs.uids import OutputUids

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
MULTI_FRAME_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
CREATED_AT = "2024-05-06T07:08:09.123456+00:00"
MODEL = ModelRef(name="cxr-foreign-object", version="1.2.0", task="foreign objects on chest X-ray")


def make_source(
    *,
    modality: str = "DX",
    rows: int = 200,
    columns: int = 160,
    patient_name: str = "Müller^Jürgen",
    charset: str = "ISO_IR 100",
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_number: int = 1,
    frames: int = 1,
) -> Dataset:
    """A small DX (or MR) image with a non-ASCII patient name, as a scanner sends it.

    With ``frames`` > 1 it is a Multi-frame Grayscale Word Secondary Capture image.
    """
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = DX_FOR_PRESENTATION if modality == "DX" else MR_IMAGE
    if frames > 1:
        ds.SOPClassUID = MULTI_FRAME_WORD_SC
        ds.NumberOfFrames = frames
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = "PID-0001"
    ds.PatientBirthDate = "19600102"
    ds.PatientSex = "M"
    ds.StudyDate = "20240506"
    ds.StudyTime = "070000"
    ds.StudyID = "S1"
    ds.AccessionNumber = "ACC-42"
    ds.ReferringPhysicianName = "Schäfer^Anna"
    ds.StudyDescription = "Thorax"
    ds.SeriesNumber = 3
    ds.InstanceNumber = instance_number
    ds.Manufacturer = "ScannerCo"
    ds.ManufacturerModelName = "XR-1"
    if modality == "DX":
        ds.PatientOrientation = ["L", "F"]
        ds.ImageLaterality = "U"
    else:
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.9, -0.4359]
        ds.ImagePositionPatient = [0.0, 0.0, 0.0]
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixels = np.arange(rows * columns, dtype=np.uint16).reshape(rows, columns) % 4096
    ds.PixelData = pixels.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def make_report(
    source: Dataset,
    *,
    probability: float = 0.9,
    peak_xy: tuple[float, float] | None = (112.0, 33.875),
    hotspot_box: tuple[float, float, float, float] | None = (99.5, 24.5, 129.5, 49.5),
    sr_per_series: bool = False,
    frame_number: int | None = None,
) -> tuple[AssessmentReport, OutputUids]:
    """A report on ``source`` by :data:`MODEL`, with its output UIDs."""
    uids = OutputUids.for_image(
        series_instance_uid=source.SeriesInstanceUID,
        sop_instance_uid=source.SOPInstanceUID,
        model_name=MODEL.name,
        model_version=MODEL.version,
        frame_number=frame_number,
        sr_per_series=sr_per_series,
    )
    report = AssessmentReport(
        source=SourceImageRef.from_dataset(source, frame_number),
        model=MODEL,
        probability=probability,
        threshold=0.5,
        verdict=Verdict.decide(probability, 0.5),
        defect_class="foreign_object",
        explained=peak_xy is not None,
        saliency=SaliencyResult(
            method="normgrad-conv1x1 combined", peak_xy=peak_xy, hotspot_box=hotspot_box
        ),
        outputs=OutputRefs.from_uids(uids, overlay_written=True),
        timings_ms={"decode": 3.5, "inference": 12.0, "explain": 20.25},
        created_at=CREATED_AT,
    )
    return report, uids


def dciodvfy_messages(path: Path) -> tuple[list[str], list[str]]:
    """Lines of ``dciodvfy`` output that begin with ``Error`` and with ``Warning``.

    dciodvfy reports on standard error and its exit code says nothing.
    """
    executable = shutil.which("dciodvfy")
    if executable is None:
        raise FileNotFoundError("dciodvfy")
    completed = subprocess.run(
        [executable, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = (completed.stderr + completed.stdout).splitlines()
    return (
        [line for line in lines if line.startswith("Error")],
        [line for line in lines if line.startswith("Warning")],
    )
