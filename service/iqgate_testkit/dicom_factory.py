"""Small, valid DICOM images written by the tests themselves (obviously fake patients)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"


def make_image(
    *,
    modality: str = "DX",
    rows: int = 96,
    columns: int = 80,
    seed: int = 0,
    patient_name: str = "PHANTOM^TEST",
    charset: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    bright_square: bool = True,
) -> Dataset:
    """A 12-bit MONOCHROME2 image with noise and, optionally, a bright square."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(200, 1200, size=(rows, columns), dtype=np.uint16)
    if bright_square:
        pixels[rows // 3 : rows // 3 + 10, columns // 2 : columns // 2 + 10] = 4000
    sop_class = {"DX": DX_PRESENTATION, "MR": MR_IMAGE, "CR": CR_IMAGE}[modality]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid or generate_uid(entropy_srcs=[f"sop-{seed}-{modality}"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.StudyInstanceUID = study_uid or generate_uid(entropy_srcs=[f"study-{seed}"])
    ds.SeriesInstanceUID = series_uid or generate_uid(entropy_srcs=[f"series-{seed}-{modality}"])
    ds.PatientName = patient_name
    ds.PatientID = f"FAKE-{seed:04d}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.AccessionNumber = f"ACC{seed:05d}"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = seed + 1
    ds.BodyPartExamined = "CHEST" if modality != "MR" else "HEART"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    return ds


def write_image(path: Path, **kwargs: object) -> Path:
    """Write :func:`make_image` to ``path`` in the DICOM file format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    make_image(**kwargs).save_as(path, enforce_file_format=True)
    return path
