"""The storage SCP: C-ECHO and C-STORE into the spool, with an allow-list and limits.

Success is answered only after the dataset is durably in the spool; a full spool
answers 0xA700, a dataset that cannot be parsed 0xC000, one that lacks what its SOP
class requires 0xA900. Receiving never waits for inference.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Sequence
from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from iqgate.config import AllowedCaller, Settings
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


def instance_problem(ds: Dataset) -> str | None:
    """Why a received image dataset cannot be assessed as its SOP class, or None."""
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if not str(ds.get(keyword, "") or "").strip():
            return f"missing {keyword}"
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return "missing Pixel Data (7FE0,0010)"
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if not ds.get(keyword):
            return f"missing {keyword}"
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if transfer_syntax is not None and not transfer_syntax.is_compressed and "PixelData" in ds:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        expected = (
            int(ds.Rows)
            * int(ds.Columns)
            * int(ds.get("SamplesPerPixel", 1))
            * frames
            * int(ds.BitsAllocated)
            // 8
        )
        actual = len(ds.PixelData)
        if actual < expected:
            return f"Pixel Data holds {actual} bytes, {expected} expected from its dimensions"
    return None


class StorageScp:
    """A pynetdicom server storing images into a :class:`Spool`."""

    def __init__(self, settings: Settings, spool: Spool, metrics: NodeMetrics) -> None:
        self.settings = settings
        self.spool = spool
        self.metrics = metrics
        self._callers = settings.allowed_callers
        self._server: ThreadedAssociationServer | None = None
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
        """Start listening (in background threads)."""
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        self._server = self.ae.start_server(
            (self.settings.host, self.settings.port),
            block=False,
            evt_handlers=handlers,
            ssl_context=self._ssl_context(),
        )
        log.info(
            "listening",
            ae_title=self.settings.ae_title,
            host=self.settings.host,
            port=self.port,
            tls=self.settings.tls_enabled,
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
        encoded = event.encoded_dataset()
        if not self.spool.has_room_for(len(encoded)):
            return DimseStatus.OUT_OF_RESOURCES, "out_of_resources", "spool over its limit"
        try:
            ds = dcmread(BytesIO(encoded))
            problem = instance_problem(ds)
        except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
            return DimseStatus.CANNOT_UNDERSTAND, "unparsable", f"cannot parse: {exc}"[:300]
        if problem is not None:
            return DimseStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "not_matching", problem
        if str(ds.SOPInstanceUID) != str(event.request.AffectedSOPInstanceUID):
            return (
                DimseStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                "not_matching",
                "SOP Instance UID differs from the C-STORE request",
            )
        info = InstanceInfo(
            sop_instance_uid=str(ds.SOPInstanceUID),
            sop_class_uid=str(ds.SOPClassUID),
            study_uid=str(ds.StudyInstanceUID),
            series_uid=str(ds.SeriesInstanceUID),
            modality=str(ds.get("Modality", "") or ""),
            calling_ae=calling,
        )
        try:
            result = self.spool.accept(encoded, info)
        except OSError as exc:
            return DimseStatus.OUT_OF_RESOURCES, "out_of_resources", f"spool write failed: {exc}"
        self.metrics.last_received.set(time.time())
        log.info(
            "stored",
            calling_ae=calling,
            sop_instance_uid=info.sop_instance_uid,
            job_id=result.job_id,
            duplicate=result.duplicate,
            size_bytes=len(encoded),
        )
        return DimseStatus.SUCCESS, "duplicate" if result.duplicate else "stored", ""
