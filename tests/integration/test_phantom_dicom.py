"""Phantom DICOM files: they decode to the samples, validate, and are byte-reproducible."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGLosslessSV1, RLELossless

from iqgate.data.phantoms import Sample, generate, write_dicom
from iqgate.data.phantoms.dicom_encoding import LOSSLESS_TRANSFER_SYNTAXES

CXR_COUNT = 5
"""Five radiographs cover the five radiograph encodings and all four syntaxes."""
CMR_COUNT = 14
"""Fourteen cardiac frames include both non-ASCII patients (indices 6 and 13)."""


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[Path, Sample]:
    out = tmp_path_factory.mktemp("phantom-dicom")
    samples = [*generate("cxr", CXR_COUNT, seed=3), *generate("cmr", CMR_COUNT, seed=3)]
    paths = write_dicom(samples, out)
    return dict(zip(paths, samples, strict=True))


def _displayed_values(ds: pydicom.Dataset) -> np.ndarray:
    """Pixel values after the Modality LUT, with MONOCHROME1 turned into high = bright."""
    stored = ds.pixel_array.astype(np.float64)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        stored = (2**ds.BitsStored - 1) - stored
    return stored * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


def test_every_file_decodes_to_its_sample_after_rescale_and_inversion(written):
    syntaxes = set()
    for path, sample in written.items():
        ds = pydicom.dcmread(path)
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        assert ds.pixel_array.shape == sample.image.shape
        assert np.array_equal(_displayed_values(ds), sample.image), path.name
    assert syntaxes == set(LOSSLESS_TRANSFER_SYNTAXES)


def test_radiographs_cover_dx_cr_both_photometrics_and_12_to_16_bits(written):
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in written]
    cxr = [ds for ds in headers if ds.Modality in ("DX", "CR")]
    assert {ds.Modality for ds in cxr} == {"DX", "CR"}
    assert {ds.get("PresentationIntentType") for ds in cxr if ds.Modality == "DX"} == {
        "FOR PRESENTATION",
        "FOR PROCESSING",
    }
    assert {ds.PhotometricInterpretation for ds in cxr} == {"MONOCHROME1", "MONOCHROME2"}
    assert {int(ds.BitsStored) for ds in headers} <= set(range(12, 17))
    assert any(float(ds.RescaleSlope) != 1.0 for ds in cxr)
    assert all(
        "WindowCenter" in ds for ds in cxr if ds.get("PresentationIntentType") != "FOR PROCESSING"
    )
    assert {ds.SOPClassUID.name for ds in headers if ds.Modality == "MR"} == {"MR Image Storage"}


def test_uids_are_valid_and_distinct_and_names_obviously_fake(written):
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in written]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        uids = [ds[keyword].value for ds in headers]
        assert all(uid.is_valid for uid in uids)
        assert len(set(uids)) == len(uids)
    assert all(ds.PatientID.startswith("PHANTOM-") for ds in headers)
    assert headers[0].PatientName == "PHANTOM^CXR^00000"
    assert all(ds.StudyDate == "20240102" for ds in headers)


def test_every_seventh_patient_name_is_non_ascii_and_round_trips(written):
    by_name = {path.name: path for path in written}
    first = pydicom.dcmread(by_name["cmr-s3-00006.dcm"], stop_before_pixels=True)
    second = pydicom.dcmread(by_name["cmr-s3-00013.dcm"], stop_before_pixels=True)
    assert (first.SpecificCharacterSet, str(first.PatientName)) == ("ISO_IR 100", "Müller^Jürgen")
    assert (second.SpecificCharacterSet, str(second.PatientName)) == ("ISO_IR 192", "Dvořák^Zdeněk")


def test_manifest_carries_labels_and_boxes_and_dicom_carries_neither(written):
    out = next(iter(written)).parent
    with open(out / "manifest.csv", newline="", encoding="utf-8") as table:
        rows = {row["path"]: row for row in csv.DictReader(table)}
    assert (out / "manifest.csv").read_text(encoding="utf-8").startswith("path,label,boxes\n")
    assert len(rows) == len(written)
    for path, sample in written.items():
        row = rows[path.name]
        assert int(row["label"]) == sample.label
        expected = ";".join(" ".join(map(str, box)) for box in sample.boxes)
        assert row["boxes"] == expected
        if sample.boxes:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            texts = [
                str(elem.value)
                for elem in ds.iterall()
                if elem.VR in ("LO", "LT", "ST", "UT", "SH")
            ]
            assert not any(expected.split(";")[0] in text for text in texts)
            assert not any(elem.tag.is_private for elem in ds.iterall())


def test_same_seed_writes_identical_bytes_and_another_seed_different_ones(tmp_path):
    for folder, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_dicom(
            [*generate("cxr", 2, seed=seed), *generate("cmr", 2, seed=seed)], tmp_path / folder
        )
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 5
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    a_file = (tmp_path / "a" / "cmr-s7-00001.dcm").read_bytes()
    assert a_file != (tmp_path / "c" / "cmr-s8-00001.dcm").read_bytes()


def test_manifest_keeps_rows_of_earlier_calls_into_the_same_folder(tmp_path):
    write_dicom(generate("cmr", 2, seed=1), tmp_path)
    write_dicom(generate("cmr", 1, seed=2), tmp_path)
    lines = (tmp_path / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "path",
        "cmr-s1-00000.dcm",
        "cmr-s1-00001.dcm",
        "cmr-s2-00000.dcm",
    ]


def test_transfer_syntaxes_option_chooses_the_encoding(tmp_path):
    paths = write_dicom(generate("cmr", 2, seed=1), tmp_path, transfer_syntaxes=[RLELossless])
    assert {pydicom.dcmread(p).file_meta.TransferSyntaxUID for p in paths} == {RLELossless}
    with pytest.raises(ValueError, match="transfer_syntaxes must be a non-empty choice of"):
        write_dicom(
            generate("cmr", 1, seed=1), tmp_path, transfer_syntaxes=["1.2.840.10008.1.2.4.50"]
        )


@pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) is not installed"
)
def test_dciodvfy_finds_no_error_in_any_kind_of_file(written):
    kinds_seen = set()
    for path in written:
        result = subprocess.run(
            ["dciodvfy", str(path)], capture_output=True, text=True, check=False
        )
        report = result.stderr + result.stdout
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert errors == [], f"{path.name}:\n{report}"
        kinds_seen.add(report.splitlines()[0].strip())
    assert kinds_seen == {"DXImageForPresentation", "DXImageForProcessing", "CRImage", "MRImage"}


@pytest.mark.skipif(
    shutil.which("dcmcjpeg") is None or shutil.which("dcmdjpeg") is None,
    reason="DCMTK dcmcjpeg/dcmdjpeg (Debian dcmtk) is not installed",
)
def test_dcmtk_jpeg_lossless_copy_is_read_by_pydicom_and_decompresses_to_the_same_pixels(
    written, tmp_path
):
    source = next(p for p in written if p.name == "cxr-s3-00000.dcm")
    lossless = tmp_path / "jpeg-lossless.dcm"
    restored = tmp_path / "restored.dcm"
    # +e1: lossless process 14, selection value 1 (DCMTK's default lossless mode).
    subprocess.run(["dcmcjpeg", "+e1", str(source), str(lossless)], check=True)
    header = pydicom.dcmread(lossless, stop_before_pixels=True)
    assert header.file_meta.TransferSyntaxUID == JPEGLosslessSV1
    assert (header.Rows, header.Columns) == written[source].image.shape
    assert header.SOPInstanceUID == pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID
    subprocess.run(["dcmdjpeg", str(lossless), str(restored)], check=True)
    assert np.array_equal(
        pydicom.dcmread(restored).pixel_array, pydicom.dcmread(source).pixel_array
    )
