"""The storage SCP: C-ECHO and C-STORE into the spool, with an allow-list and limits.

Success is answered only after the dataset is durably in the spool; a full spool
answers 0xA700, a dataset that cannot be parsed 0xC000, one that lacks what its SOP
class requires 0xA900. Receiving never waits for inference.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Sequence
from io import BytesIO

from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification
from pynetdicom.transport import AssociationServer, ThreadedAssociationServer

from iqgate.config import AllowedCaller, Settings
from iqgate.errors import IqgateError
from iqgate.node.ingest.dimse import (
    ACCEPTED_TRANSFER_SYNTAXES,
    STORAGE_CLASSES,
    AssociationRejectReason,
    DimseStatus,
)
from iqgate.node.ingest.header import (
    PARSE_ERRORS,
    file_meta_header,
    instance_info,
    instance_problem,
    read_header,
)
from iqgate.node.ingest.tls import server_context
from iqgate.node.ops.events import StageEvents
from iqgate.node.ops.logs import get_logger
from iqgate.node.store.spool import Spool

REJECT_PERMANENT = 0x01
REJECT_SOURCE_SERVICE_USER = 0x01

log = get_logger("scp")


def caller_allowed(callers: Sequence[AllowedCaller], ae_title: str, host: str) -> bool:
    """Whether the allow-list admits this caller (an empty list admits anyone)."""
    return not callers or any(entry.allows(ae_title, host) for entry in callers)


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

    def __init__(self, settings: Settings, spool: Spool, metrics: StageEvents) -> None:
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
        for sop_class in STORAGE_CLASSES:
            ae.add_supported_context(sop_class, list(ACCEPTED_TRANSFER_SYNTAXES))
        return ae

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
            ssl_context=server_context(self.settings),
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
            self.metrics.association("rejected")
            event.assoc.kill()  # waits until the A-ASSOCIATE-RJ is on the wire

    def _on_accepted(self, event: Event) -> None:
        self.metrics.association("accepted")
        refused = event.assoc.rejected_contexts
        if refused:
            log.warning(
                "contexts_refused",
                calling_ae=str(event.assoc.requestor.ae_title).strip(),
                contexts=[
                    f"{UID(cx.abstract_syntax).name}: {', '.join(cx.transfer_syntax)}"
                    for cx in refused
                ],
                reason="no transfer syntax iqgate decodes, or not a storage SOP class",
            )

    def _on_rejected(self, event: Event) -> None:
        self.metrics.association("rejected")

    def _on_aborted(self, event: Event) -> None:
        self.metrics.association("aborted")

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
        self.metrics.c_store_answered(outcome, time.perf_counter() - started)
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
            calling,  # the file alone describes its job (ingest.recovery)
        )
        try:
            with stream.getbuffer() as dataset_bytes:
                result = self.spool.accept((preamble, dataset_bytes), info)
        except (OSError, sqlite3.Error) as exc:
            return DimseStatus.OUT_OF_RESOURCES, "out_of_resources", f"spool write failed: {exc}"
        self.metrics.instance_stored(time.time())
        log.info(
            "stored",
            calling_ae=calling,
            sop_instance_uid=info.sop_instance_uid,
            job_id=result.job_id,
            duplicate=result.duplicate,
            size_bytes=len(preamble) + size,
        )
        return DimseStatus.SUCCESS, "duplicate" if result.duplicate else "stored", ""
