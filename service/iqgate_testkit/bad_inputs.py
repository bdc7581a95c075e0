"""A corpus of malformed DICOM, each case with the outcome the node must give it.

A case is what a peer can put on the wire: a valid C-STORE request whose data set bytes
are broken in one way (a scanner with a bug, a corrupted file, a hostile peer). Each
case says what the node answers and what becomes of it:

- ``REFUSED``: the SCP answers a failure status (0xA900 or 0xC000) with a
  ``store_refused`` log line and an ``iqgate_instances_total{outcome=...}`` count, and
  nothing is stored;
- ``FAILED``: the SCP stores it (it parses), and the worker marks the job failed at
  the decode stage with a reason (``job_failed`` log line,
  ``iqgate_jobs_failed_total{stage="decode"}``, ``iqgate jobs list --state failed``);
- ``NOT_ASSESSED``: a colour image, valid DICOM that no grey-image model applies to:
  stored, recorded as not assessed (``not_assessed`` log line with the routing reason,
  ``iqgate_not_assessed_total``); decoding it directly raises ``ImagingError``.

In no case does the node stop serving. :func:`write_file` writes a case as a DICOM file
(valid file meta, broken data set): ``pynetdicom``'s ``send_c_store(path)`` sends such
a file's data set bytes as they are, which DCMTK ``storescu`` refuses to do.
The campaign (tools/soak.py) sends the same corpus.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_fragments
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)
from pynetdicom.dsutils import encode

from iqgate_testkit.dicom_factory import DX_PRESENTATION, make_image

PHANTOM_IDENTIFIERS = {
    "PatientName": "SECRETNAME^PHANTOM",
    "PatientID": "SECRET-ID-4711",
    "PatientBirthDate": "19020304",
    "AccessionNumber": "SECRETACC99",
}
"""Identifiers every case carries; none of them may appear in a log line or a metric."""

UID_ROOT = "1.2.826.0.1.3680043.8.498.66"
A900 = 0xA900
C000 = 0xC000


class Expect(str, Enum):
    """What the node does with a case."""

    REFUSED = "refused"
    FAILED = "failed"
    NOT_ASSESSED = "not_assessed"


@dataclass(frozen=True)
class BadInput:
    """One malformed data set and its defined outcome."""

    name: str
    description: str
    dataset: bytes
    """The data set bytes as sent (no file meta), in ``transfer_syntax``."""
    sop_instance_uid: str
    transfer_syntax: str
    expect: Expect
    reason: str
    """A fragment of the refusal reason or the job's failure reason."""
    statuses: frozenset[int] = frozenset()
    """For REFUSED: the statuses that are acceptable answers."""
    sop_class_uid: str = DX_PRESENTATION


def _image(index: int, **attributes: object) -> Dataset:
    ds = make_image(
        seed=index, rows=64, columns=48, sop_uid=f"{UID_ROOT}.{index}", bright_square=False
    )
    for keyword, value in PHANTOM_IDENTIFIERS.items():
        setattr(ds, keyword, value)
    for keyword, value in attributes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def _encoded(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    implicit = syntax == ImplicitVRLittleEndian
    if UID(syntax).is_encapsulated:
        ds.file_meta.TransferSyntaxUID = syntax
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    data = encode(ds, implicit, True, False)
    if data is None:
        raise ValueError(f"cannot encode the corpus data set {ds.SOPInstanceUID}")
    return data


def _rle_frame(length: int) -> bytes:
    """An RLE frame header declaring one segment, followed by ``length`` garbage bytes."""
    header = struct.pack("<16I", 1, 64, *([0] * 14))
    return header + bytes(range(256)) * (length // 256) + b"\x80" * (length % 256)


def _nested_sequences(depth: int) -> bytes:
    """Implicit VR: Referenced Image Sequence nested ``depth`` times (a recursion bomb)."""
    open_seq = struct.pack("<HHI", 0x0008, 0x1140, 0xFFFFFFFF)
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close_item = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    close_seq = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return (open_seq + open_item) * depth + (close_item + close_seq) * depth


def _case(
    name: str,
    description: str,
    index: int,
    dataset: bytes | Dataset,
    expect: Expect,
    reason: str,
    *,
    syntax: str = ExplicitVRLittleEndian,
    statuses: frozenset[int] = frozenset({A900, C000}),
) -> BadInput:
    return BadInput(
        name=name,
        description=description,
        dataset=dataset if isinstance(dataset, bytes) else _encoded(dataset, syntax),
        sop_instance_uid=f"{UID_ROOT}.{index}",
        transfer_syntax=syntax,
        expect=expect,
        reason=reason,
        statuses=statuses if expect is Expect.REFUSED else frozenset({0x0000}),
    )


def corpus() -> list[BadInput]:
    """Every malformed case, in a fixed order, with distinct SOP Instance UIDs."""
    pixel_tag = struct.pack("<HH", 0x7FE0, 0x0010)
    rows_us = struct.pack("<HH", 0x0028, 0x0010) + b"US\x02\x00"
    cases = [
        _case("empty", "an empty data set", 1, b"", Expect.REFUSED, "missing SOPClassUID"),
        _case(
            "not-dicom",
            "bytes that are not DICOM (a PDF header and text)",
            2,
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n" * 20,
            Expect.REFUSED,
            "",
        ),
        _case(
            "truncated-pixels",
            "a valid image cut short inside its Pixel Data",
            3,
            _encoded(_image(3))[:-1500],
            Expect.REFUSED,
            "truncated",
        ),
        _case(
            "truncated-header",
            "a valid image cut short inside its header",
            4,
            _encoded(_image(4))[:300],
            Expect.REFUSED,
            "",
        ),
        _case(
            "wrong-vr",
            "Rows (0028,0010) sent with VR AE instead of US",
            5,
            _encoded(_image(5)).replace(rows_us, rows_us[:4] + b"AE\x02\x00"),
            Expect.REFUSED,
            "",
        ),
        _case(
            "unknown-vr",
            "Rows (0028,0010) sent with the undefined VR 'ZZ'",
            6,
            _encoded(_image(6)).replace(rows_us, rows_us[:4] + b"ZZ\x02\x00"),
            Expect.REFUSED,
            "",
        ),
        _case(
            "odd-length-us",
            "Rows (0028,0010) US with a value length of 3",
            7,
            _encoded(_image(7)).replace(rows_us, rows_us[:6] + b"\x03\x00"),
            Expect.REFUSED,
            "",
        ),
        _case(
            "absurd-dimensions-native",
            "Rows 65535 x Columns 65535 over 6 kB of uncompressed pixel data",
            8,
            _encoded(_image(8, Rows=65535, Columns=65535)),
            Expect.REFUSED,
            "Pixel Data holds",
            statuses=frozenset({A900}),
        ),
        _case(
            "absurd-frames-native",
            "Number of Frames 2147483647 over one frame of pixel data",
            9,
            _encoded(_image(9, NumberOfFrames=2147483647)),
            Expect.REFUSED,
            "Pixel Data holds",
            statuses=frozenset({A900}),
        ),
        _case(
            "zero-rows",
            "Rows 0",
            10,
            _encoded(_image(10, Rows=0)),
            Expect.REFUSED,
            "missing Rows",
            statuses=frozenset({A900}),
        ),
        _case(
            "missing-pixel-data",
            "an image without Pixel Data (7FE0,0010)",
            11,
            _encoded(_image(11, PixelData=None)),
            Expect.REFUSED,
            "missing Pixel Data",
            statuses=frozenset({A900}),
        ),
        _case(
            "uid-mismatch",
            "SOP Instance UID in the data set differs from the C-STORE request",
            12,
            _encoded(_image(12, SOPInstanceUID=f"{UID_ROOT}.12.999")),
            Expect.REFUSED,
            "differs from the C-STORE request",
            statuses=frozenset({A900}),
        ),
        _case(
            "deflate-garbage",
            "Deflated Explicit VR Little Endian whose bytes do not inflate",
            13,
            b"\x00\x01garbage that is not a deflate stream" * 10,
            Expect.REFUSED,
            "cannot parse",
            syntax=DeflatedExplicitVRLittleEndian,
            statuses=frozenset({C000}),
        ),
        _case(
            "nested-sequences",
            "a sequence nested 5000 levels deep before the image attributes",
            14,
            _nested_sequences(5000) + _encoded(_image(14), ImplicitVRLittleEndian),
            Expect.REFUSED,
            "",
            syntax=ImplicitVRLittleEndian,
        ),
        _case(
            "encapsulated-truncated",
            "RLE Pixel Data whose fragment item declares more bytes than were sent",
            15,
            _encoded(_image(15, PixelData=encapsulate([_rle_frame(600)])), RLELossless)[:-200],
            Expect.REFUSED,
            "truncated",
            syntax=RLELossless,
        ),
        _case(
            "absurd-dimensions-rle",
            "RLE, Rows 65535 x Columns 65535 over a 300-byte fragment (a memory bomb)",
            16,
            _image(16, Rows=65535, Columns=65535, PixelData=encapsulate([_rle_frame(300)])),
            Expect.FAILED,
            "IQGATE_DECODE_MAX_PIXELS",
            syntax=RLELossless,
        ),
        _case(
            "absurd-frames-rle",
            "RLE, 64 x 48 pixels x 100000 frames declared over one fragment",
            17,
            _image(17, NumberOfFrames=100000, PixelData=encapsulate([_rle_frame(300)])),
            Expect.FAILED,
            "IQGATE_DECODE_MAX_PIXELS",
            syntax=RLELossless,
        ),
        _case(
            "rle-garbage",
            "RLE Lossless whose segment data is garbage of the wrong length",
            18,
            _image(18, PixelData=encapsulate([_rle_frame(50)])),
            Expect.FAILED,
            "cannot decode",
            syntax=RLELossless,
        ),
        _case(
            "jpeg2000-truncated",
            "JPEG 2000 Lossless codestream cut to half its length",
            19,
            _j2k_truncated(19),
            Expect.FAILED,
            "cannot decode",
            syntax=JPEG2000Lossless,
        ),
        _case(
            "jpeg-garbage",
            "JPEG Baseline fragment of a start-of-image marker and noise",
            20,
            _image(
                20,
                BitsAllocated=8,
                BitsStored=8,
                HighBit=7,
                PixelData=encapsulate([b"\xff\xd8" + bytes(range(256)) * 3 + b"\xff\xd9"]),
            ),
            Expect.FAILED,
            "cannot decode",
            syntax=JPEGBaseline8Bit,
        ),
        _case(
            "rgb",
            "Photometric Interpretation RGB, 3 samples per pixel",
            21,
            _encoded(_colour(21, "RGB")),
            Expect.NOT_ASSESSED,
            "Photometric Interpretation",
        ),
        _case(
            "ybr-full",
            "Photometric Interpretation YBR_FULL, 3 samples per pixel",
            22,
            _encoded(_colour(22, "YBR_FULL")),
            Expect.NOT_ASSESSED,
            "Photometric Interpretation",
        ),
        _case(
            "palette-colour",
            "Photometric Interpretation PALETTE COLOR",
            23,
            _encoded(_image(23, PhotometricInterpretation="PALETTE COLOR")),
            Expect.NOT_ASSESSED,
            "Photometric Interpretation",
        ),
        _case(
            "zero-window-width",
            "Window Width 0 (the standard needs at least 1)",
            24,
            _encoded(_image(24, WindowCenter="100", WindowWidth="0")),
            Expect.FAILED,
            "Window Width",
        ),
    ]
    for case in cases:
        if case.expect is not Expect.REFUSED and pixel_tag not in case.dataset:
            raise AssertionError(f"corpus case {case.name} lost its pixel data")
    return cases


def _colour(index: int, photometric: str) -> Dataset:
    ds = _image(index)
    pixels = np.full((ds.Rows, ds.Columns, 3), 90, dtype=np.uint8)
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = pixels.tobytes()
    return ds


def _j2k_truncated(index: int) -> Dataset:
    ds = _image(index)
    ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    fragment = next(generate_fragments(ds.PixelData))
    ds.PixelData = encapsulate([fragment[: len(fragment) // 2]])
    return ds


def file_meta(case: BadInput) -> FileMetaDataset:
    """Valid file meta for a case (what pynetdicom needs to send its data set)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = case.sop_class_uid
    meta.MediaStorageSOPInstanceUID = case.sop_instance_uid
    meta.TransferSyntaxUID = case.transfer_syntax
    return meta


def write_file(case: BadInput, folder: Path) -> Path:
    """The case as a DICOM file: preamble, valid file meta, then the broken data set."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, file_meta(case), enforce_standard=True)
    path = folder / f"{case.name}.dcm"
    path.write_bytes(buffer.getvalue() + case.dataset)
    return path
