"""The storage SCP: C-ECHO and C-STORE into the spool, with an allow-list and limits.

Success is answered only after the dataset is durably in the spool; a full spool
answers 0xA700, a dataset that cannot be parsed 0xC000, one that lacks what its SOP
class requires 0xA900. Receiving never waits for inference.
"""

from __future__ import annotations

import socket
import sqlite3
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import BinaryIO

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pynetdicom import AE, PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification
from pynetdicom.transport import AssociationServer, ThreadedAssociationServer

from iqgate.config import AllowedCaller, Settings
from iqgate.errors import IqgateError
from iqgate.node.dimse import (
    ACCEPTED_TRANSFER_SYNTAXES,
    IMAGE_STORAGE_CLASSES,
    AssociationRejectReason,
    DimseStatus,
)
from iqgate.node.logs import get_logger
from iqgate.node.metrics import NodeMetrics
from iqgate.node.spool import InstanceInfo, Spool

REJECT_PERMANENT = 0x01
REJECT_SOURCE_SERVICE_USER = 0x01

log = get_logger("scp")


def caller_allowed(callers: Sequence[AllowedCaller], ae_title: str, host: str) -> bool:
    """Whether the allow-list admits this caller (an empty list admits anyone)."""
    return not callers or any(entry.allows(ae_title, host) for entry in callers)


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
    """Why a received image data set cannot be assessed as its SOP class, or None."""
    ds = header.dataset
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if not str(ds.get(keyword, "") or "").strip():
            return f"missing {keyword}"
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
    """What the spool records of a received data set (reading converts the values)."""
    return InstanceInfo(
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        modality=str(ds.get("Modality", "") or ""),
        calling_ae=calling_ae,
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


class AcceptorServer(ThreadedAssociationServer):
    """pynetdicom's threaded association server, started by :class:`StorageScp` itself.

    ``AE.start_server`` cannot take a server class; ``AE.make_server`` can, but does not
    register the server with the AE, so pynetdicom's ``shutdown`` (which unregisters
    it) does not apply: this one stops serving and closes the socket.
    """

    def shutdown(self) -> None:
        """Stop serving and close the listening socket."""
        super(AssociationServer, self).shutdown()
        self.server_close()


class SharedPortServer(AcceptorServer):
    """An association server whose port other processes listen on too.

    With ``SO_REUSEPORT`` the kernel spreads incoming connections over every process
    listening on the port (``IQGATE_RECEIVE_PROCESSES``): receiving is Python, so one
    process receives on one core at most.
    """

    def server_bind(self) -> None:
        """Set ``SO_REUSEPORT``, then bind as pynetdicom does."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class PortInUse(IqgateError):
    """Something listens on the node's DICOM port already."""


def ensure_port_free(host: str, port: int) -> None:
    """Raise :class:`PortInUse` when something listens on ``host:port`` already.

    A node's receiving processes share their port (``SO_REUSEPORT``), which would also
    let a second node started on the same port split the traffic without an error: the
    node checks that the port is free before its first process binds it.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"IQGATE_PORT {port} on {host} is in use (another node or program listens "
                f"there): {exc}"
            ) from exc


class StorageScp:
    """A pynetdicom server storing images into a :class:`Spool`."""

    def __init__(self, settings: Settings, spool: Spool, metrics: NodeMetrics) -> None:
        self.settings = settings
        self.spool = spool
        self.metrics = metrics
        self._callers = settings.allowed_callers
        self._server: AcceptorServer | None = None
        self.ae = self._build_ae()

    def _build_ae(self) -> AE:
        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.maximum_associations = s.max_associations
        ae.maximum_pdu_size = s.max_pdu_bytes
        ae.acse_timeout = s.acse_timeout_s
        ae.dimse_timeout = s.dimse_timeout_s
        ae.network_timeout = s.network_timeout_s
        ae.require_called_aet = True
        ae.add_supported_context(Verification)
        for sop_class in IMAGE_STORAGE_CLASSES:
            ae.add_supported_context(sop_class, list(ACCEPTED_TRANSFER_SYNTAXES))
        return ae

    def _ssl_context(self) -> ssl.SSLContext | None:
        s = self.settings
        if not s.tls_enabled:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(s.tls_cert), str(s.tls_key))
        if s.tls_ca is not None:
            context.load_verify_locations(str(s.tls_ca))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def start(self) -> None:
        """Start listening (in background threads); on a shared port with
        ``IQGATE_RECEIVE_PROCESSES`` > 1 (see :func:`ensure_port_free`)."""
        shared = self.settings.receive_processes > 1
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        server_class = SharedPortServer if shared else AcceptorServer
        self._server = self.ae.make_server(
            (self.settings.host, self.settings.port),
            evt_handlers=handlers,
            ssl_context=self._ssl_context(),
            server_class=server_class,
        )
        threading.Thread(
            target=self._server.serve_forever, name="scp-acceptor", daemon=True
        ).start()
        log.info(
            "listening",
            ae_title=self.settings.ae_title,
            host=self.settings.host,
            port=self.port,
            tls=self.settings.tls_enabled,
            shared_port=shared,
        )

    @property
    def port(self) -> int:
        """The bound port (useful when the settings asked for port 0)."""
        if self._server is None:
            return self.settings.port
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop listening; associations in progress are closed."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- association events ------------------------------------------------------------
    def _on_requested(self, event: Event) -> None:
        calling = str(event.assoc.requestor.primitive.calling_ae_title).strip()
        host = str(event.assoc.requestor.address)
        if not caller_allowed(self._callers, calling, host):
            log.warning(
                "association_rejected",
                calling_ae=calling,
                peer=host,
                reason="calling AE not in IQGATE_ALLOWED_CALLING_AES",
            )
            event.assoc.acse.send_reject(
                REJECT_PERMANENT,
                REJECT_SOURCE_SERVICE_USER,
                AssociationRejectReason.CALLING_AE_NOT_RECOGNISED,
            )
            self.metrics.associations.labels("rejected").inc()
            event.assoc.kill()  # waits until the A-ASSOCIATE-RJ is on the wire

    def _on_accepted(self, event: Event) -> None:
        self.metrics.associations.labels("accepted").inc()

    def _on_rejected(self, event: Event) -> None:
        self.metrics.associations.labels("rejected").inc()

    def _on_aborted(self, event: Event) -> None:
        self.metrics.associations.labels("aborted").inc()

    def _on_echo(self, event: Event) -> int:
        return DimseStatus.SUCCESS

    # -- storage -----------------------------------------------------------------------
    def _on_store(self, event: Event) -> int:
        started = time.perf_counter()
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            status, outcome, detail = self._store(event, calling)
        except Exception as exc:
            status, outcome = DimseStatus.CANNOT_UNDERSTAND, "error"
            detail = f"unexpected {type(exc).__name__} while storing"
            log.exception("store_error", calling_ae=calling)
        finally:
            self.metrics.store_seconds.observe(time.perf_counter() - started)
        self.metrics.instances.labels(outcome).inc()
        if status != DimseStatus.SUCCESS:
            log.warning(
                "store_refused",
                calling_ae=calling,
                status=f"0x{status:04X}",
                outcome=outcome,
                reason=detail,
                sop_instance_uid=str(event.request.AffectedSOPInstanceUID),
            )
        return status

    def _store(self, event: Event, calling: str) -> tuple[DimseStatus, str, str]:
        stream = event.request.DataSet
        if not isinstance(stream, BytesIO):
            return DimseStatus.CANNOT_UNDERSTAND, "unparsable", "the request carried no data set"
        size = stream.seek(0, 2)
        stream.seek(0)
        if not self.spool.has_room_for(size):
            return DimseStatus.OUT_OF_RESOURCES, "out_of_resources", "spool over its limit"
        try:
            header = read_header(stream, event.context.transfer_syntax)
            problem = instance_problem(header)
            if problem is None:
                info = instance_info(header.dataset, calling)
        except PARSE_ERRORS as exc:
            return DimseStatus.CANNOT_UNDERSTAND, "unparsable", f"cannot parse: {exc}"[:300]
        finally:
            stream.seek(0)
        if problem is not None:
            return DimseStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "not_matching", problem
        if info.sop_instance_uid != str(event.request.AffectedSOPInstanceUID):
            return (
                DimseStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                "not_matching",
                "SOP Instance UID differs from the C-STORE request",
            )
        preamble = file_meta_header(
            str(event.request.AffectedSOPClassUID),
            info.sop_instance_uid,
            str(event.context.transfer_syntax),
            calling,  # the file alone describes its job (Spool.recover_files)
        )
        try:
            with stream.getbuffer() as dataset_bytes:
                result = self.spool.accept((preamble, dataset_bytes), info)
        except (OSError, sqlite3.Error) as exc:
            return DimseStatus.OUT_OF_RESOURCES, "out_of_resources", f"spool write failed: {exc}"
        self.metrics.last_received.set(time.time())
        log.info(
            "stored",
            calling_ae=calling,
            sop_instance_uid=info.sop_instance_uid,
            job_id=result.job_id,
            duplicate=result.duplicate,
            size_bytes=len(preamble) + size,
        )
        return DimseStatus.SUCCESS, "duplicate" if result.duplicate else "stored", ""
