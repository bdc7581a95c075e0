"""The DIMSE sender: C-STORE SCU of result files over one association per batch, over
TLS for a ``dicoms://`` destination."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE

from iqgate.config import DicomDestination
from iqgate.node.delivery.tls import client_context
from iqgate.node.store.records import Delivery

SUCCESS_OR_WARNING = frozenset({0x0000, 0x0107, 0x0116, 0xB000, 0xB007, 0xB006})
"""C-STORE statuses that mean the peer has the instance (PS3.4 B.2.3: success, warnings)."""


def presentation_contexts(paths: Sequence[Path]) -> dict[str, set[str]]:
    """SOP Class UID -> the transfer syntaxes of ``paths`` (read from their file meta)."""
    contexts: dict[str, set[str]] = {}
    for path in paths:
        meta = read_file_meta_info(path)
        contexts.setdefault(str(meta.MediaStorageSOPClassUID), set()).add(
            str(meta.TransferSyntaxUID)
        )
    return contexts


class DimseSender:
    """Sends result files to a DICOM peer by C-STORE, as the node's own AE title."""

    def __init__(self, destination: DicomDestination, ae_title: str, timeout_s: float) -> None:
        self.destination = destination
        self.ae_title = ae_title
        self.timeout_s = timeout_s

    def send(
        self, deliveries: Sequence[Delivery], stop: threading.Event
    ) -> Iterator[tuple[Delivery, str | None]]:
        """C-STORE each file over one association; see :class:`~.sender.Sender`."""
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = self.timeout_s
        ae.dimse_timeout = self.timeout_s
        ae.network_timeout = self.timeout_s
        for sop_class, syntaxes in presentation_contexts([d.path for d in deliveries]).items():
            ae.add_requested_context(sop_class, sorted(syntaxes))
        target = self.destination
        tls_args = None if target.tls is None else (client_context(target.tls), target.host)
        assoc = ae.associate(target.host, target.port, ae_title=target.ae_title, tls_args=tls_args)
        if not assoc.is_established:
            for delivery in deliveries:
                yield delivery, "association not established (peer down or refused)"
            return
        try:
            for delivery in deliveries:
                if stop.is_set() or not assoc.is_established:
                    return
                status = assoc.send_c_store(delivery.path)
                code = int(status.Status) if status and "Status" in status else None
                if code in SUCCESS_OR_WARNING:
                    yield delivery, None
                else:
                    yield delivery, f"status 0x{code:04X}" if code is not None else "no response"
        finally:
            if assoc.is_established:
                assoc.release()
