"""Reading a received header once: the attributes before the pixel data, what the
store records of it, and the hand-written file meta of the spooled file."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import BinaryIO

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from iqgate.node.ingest.dimse import IMAGE_STORAGE_CLASSES
from iqgate.node.store.records import InstanceInfo
from iqgate.routing_rules import HeaderFacts

HEADER_KEYWORDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SamplesPerPixel",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "BitsAllocated",
    # the header facts routing needs (iqgate.routing_rules.HeaderFacts.from_dataset)
    "PhotometricInterpretation",
    "ImageType",
    "BodyPartExamined",
    "AnatomicRegionSequence",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "Manufacturer",
    "ContributingEquipmentSequence",
)
"""What the node reads of a received header; the other attributes travel on unread."""
HEADER_TAGS: list[BaseTag | int] = [BaseTag(tag_for_keyword(k)) for k in HEADER_KEYWORDS]
PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
"""Float Pixel Data, Double Float Pixel Data, Pixel Data: where the header ends."""
UNDEFINED_LENGTH = 0xFFFFFFFF
LONG_LENGTH_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}
)
"""Explicit VRs whose element header has a 4-byte length (12 bytes in all, PS3.5 7.1.2)."""
PARSE_ERRORS = (
    InvalidDicomError,
    BytesLengthException,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    OSError,
    NotImplementedError,
    RecursionError,
    struct.error,
    zlib.error,
)
"""What pydicom raises for a data set it cannot read (and zlib for bad deflated data)."""


@dataclass(frozen=True)
class ReceivedHeader:
    """The attributes before the pixel data, and what was sent of the pixel data."""

    dataset: Dataset
    pixel_tag: int | None
    pixel_length: int | None
    """Declared value length (``UNDEFINED_LENGTH`` for encapsulated data)."""
    pixel_sent: int | None
    """Bytes of the value actually sent (encapsulated: of its fragments)."""
    pixel_complete: bool
    """Whether every byte the element (or each of its fragment items) declares was sent."""
    transfer_syntax: UID


def read_header(stream: BinaryIO, transfer_syntax: str) -> ReceivedHeader:
    """Parse a received data set up to its pixel data, without reading the pixel data.

    ``stream`` holds the data set as sent (no file meta), in ``transfer_syntax``.
    Reading stops at the pixel data element: its tag and declared length are noted,
    and what was really sent of it is measured (for encapsulated data by walking the
    fragment items), so a truncated image is caught without reading its pixels and a
    10 MB image costs as much as its header. Only the :data:`HEADER_KEYWORDS` are
    kept, as read (pydicom converts lazily): :func:`instance_problem` converts them,
    so a malformed one is refused here; the attributes the node does not need travel
    on unread to the worker, which fails that job with its reason if it cannot use
    one. Raises one of :data:`PARSE_ERRORS` for data that cannot be parsed.
    """
    syntax = UID(transfer_syntax)
    if syntax == DeflatedExplicitVRLittleEndian:
        stream = BytesIO(zlib.decompress(stream.read(), -zlib.MAX_WBITS))
    found: dict[str, int] = {}

    def at_pixel_data(tag: BaseTag, vr: str | None, length: int) -> bool:
        if int(tag) in PIXEL_DATA_TAGS:
            found.update(tag=int(tag), length=length)
            return True
        return False

    dataset = read_dataset(
        stream,
        syntax.is_implicit_VR,
        syntax.is_little_endian,
        stop_when=at_pixel_data,
        specific_tags=HEADER_TAGS,
    )
    sent, complete = None, True
    if "tag" in found:
        sent, complete = _pixel_bytes_sent(stream, syntax, found["length"])
    return ReceivedHeader(dataset, found.get("tag"), found.get("length"), sent, complete, syntax)


def _pixel_bytes_sent(stream: BinaryIO, syntax: UID, length: int) -> tuple[int, bool]:
    """Bytes of the pixel data value present in ``stream`` (positioned at its tag).

    For a defined length: what follows the element header, at most ``length``. For
    an undefined length: the sum of the fragment items' lengths, walking item headers
    only. Also whether nothing declared is missing (no item claims more than remains).
    """
    start = stream.tell()
    end = stream.seek(0, 2)
    stream.seek(start + 4)
    header = 8
    if not syntax.is_implicit_VR and stream.read(2) in LONG_LENGTH_VRS:
        header = 12
    value_start = start + header
    if length != UNDEFINED_LENGTH:
        return max(0, min(length, end - value_start)), end - value_start >= length
    order = "<" if syntax.is_little_endian else ">"
    position, total = value_start, 0
    while position + 8 <= end:
        stream.seek(position)
        group, element, item_length = struct.unpack(f"{order}HHI", stream.read(8))
        if (group, element) != (0xFFFE, 0xE000):
            break  # the sequence delimiter, or garbage: stop counting
        position += 8
        total += max(0, min(item_length, end - position))
        if item_length > end - position:
            return total, False
        position += item_length
    return total, True


def instance_problem(header: ReceivedHeader) -> str | None:
    """Why a received data set cannot be stored as its SOP class, or None.

    Every instance needs its UIDs; the pixel checks apply to image SOP classes only.
    """
    ds = header.dataset
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if not str(ds.get(keyword, "") or "").strip():
            return f"missing {keyword}"
    if UID(str(ds.SOPClassUID)) not in IMAGE_STORAGE_CLASSES:
        return None
    if header.pixel_tag is None:
        return "missing Pixel Data (7FE0,0010)"
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if not ds.get(keyword):
            return f"missing {keyword}"
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    expected_bits = int(ds.Rows) * int(ds.Columns) * samples * frames * int(ds.BitsAllocated)
    expected = (expected_bits + 7) // 8
    sent = header.pixel_sent or 0
    encapsulated = header.pixel_length == UNDEFINED_LENGTH
    if encapsulated and not header.transfer_syntax.is_encapsulated:
        return "Pixel Data has an undefined length in a native (uncompressed) transfer syntax"
    if not header.pixel_complete:
        what = "its fragments declare more" if encapsulated else f"{header.pixel_length} declared"
        return f"truncated: Pixel Data ends after {sent} bytes, {what}"
    if not encapsulated and header.pixel_tag == 0x7FE00010 and sent < expected:
        return (
            f"Pixel Data holds {sent} bytes, {expected} expected from its dimensions "
            "(Rows, Columns, Samples per Pixel, Number of Frames, Bits Allocated)"
        )
    return None


def instance_info(ds: Dataset, calling_ae: str) -> InstanceInfo:
    """What the spool records of a received data set (reading converts the values),
    with the header facts routing needs, so the header is parsed only here."""
    return InstanceInfo(
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        modality=str(ds.get("Modality", "") or ""),
        calling_ae=calling_ae,
        header_facts=HeaderFacts.from_dataset(ds).to_json(),
    )


def _element(group_element: tuple[int, int], vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element of the file meta group (PS3.5 7.1.2)."""
    tag = struct.pack("<HH", *group_element)
    if vr in LONG_LENGTH_VRS:
        return tag + vr + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


def file_meta_header(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, source_ae: str
) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information of a received instance (PS3.10 7.1).

    Written by hand: it is on the path of every C-STORE, and building it through a
    pydicom data set costs more than parsing the received header does.
    """
    elements = b"".join(
        (
            _element((0x0002, 0x0001), b"OB", b"\x00\x01"),
            _element((0x0002, 0x0002), b"UI", _padded(sop_class_uid, b"\x00")),
            _element((0x0002, 0x0003), b"UI", _padded(sop_instance_uid, b"\x00")),
            _element((0x0002, 0x0010), b"UI", _padded(transfer_syntax, b"\x00")),
            _element((0x0002, 0x0012), b"UI", _padded(PYNETDICOM_IMPLEMENTATION_UID, b"\x00")),
            _element((0x0002, 0x0013), b"SH", _padded(PYNETDICOM_IMPLEMENTATION_VERSION, b" ")),
            _element((0x0002, 0x0016), b"AE", _padded(source_ae, b" ")),
        )
    )
    length = _element((0x0002, 0x0000), b"UL", struct.pack("<I", len(elements)))
    return b"\x00" * 128 + b"DICM" + length + elements
