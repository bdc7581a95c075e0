"""The STOW-RS sender: result files POSTed to a DICOMweb origin server (PS3.18 10.5).

One request per batch (split at :data:`REQUEST_MAX_BYTES`): a ``multipart/related;
type="application/dicom"`` body with one Part 10 file per part. The answer's Failed SOP
Sequence (0008,1198) names the instances that failed, with their Failure Reason
(0008,1197); the others arrived when the status is 200 or 202 (PS3.18 10.5.3).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator, Sequence

from iqgate.destinations import DicomWebDestination
from iqgate.node.delivery.http_post import POST_ERRORS, HttpAnswer, post
from iqgate.node.store.records import Delivery

REQUEST_MAX_BYTES = 64 * 2**20
"""A batch is split into requests of about this many bytes (a single bigger file is sent alone)."""
DICOM_JSON = "application/dicom+json"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
STORED_STATUSES = frozenset({200, 202})
"""200: every instance stored; 202: some stored, the failed ones listed (PS3.18 10.5.3)."""


def multipart_body(files: Sequence[bytes], boundary: str) -> bytes:
    """``multipart/related`` body (RFC 2387) of Part 10 files, one ``application/dicom`` part each."""
    delimiter = f"--{boundary}".encode()
    parts = [delimiter + b"\r\nContent-Type: application/dicom\r\n\r\n" + data for data in files]
    return b"\r\n".join(parts) + b"\r\n" + delimiter + b"--\r\n"


def failed_instances(answer: HttpAnswer) -> dict[str, str]:
    """SOP Instance UID -> failure text, from an answer's Failed SOP Sequence (empty when
    the answer has none or is not DICOM JSON)."""
    if DICOM_JSON not in answer.content_type and "application/json" not in answer.content_type:
        return {}
    try:
        document = json.loads(answer.body)
    except ValueError:
        return {}
    if isinstance(document, list):  # some servers wrap the one response data set in a list
        document = document[0] if document else {}
    failed: dict[str, str] = {}
    for item in (document.get(FAILED_SOP_SEQUENCE) or {}).get("Value", []):
        uid = (item.get(REFERENCED_SOP_INSTANCE_UID) or {}).get("Value", [""])[0]
        reason = (item.get(FAILURE_REASON) or {}).get("Value", [None])[0]
        failed[uid] = "refused" if reason is None else f"refused, failure reason 0x{reason:04X}"
    return failed


def batches(deliveries: Sequence[Delivery], max_bytes: int) -> Iterator[list[Delivery]]:
    """``deliveries`` in order, grouped so each group's files add up to about ``max_bytes``."""
    batch: list[Delivery] = []
    size = 0
    for delivery in deliveries:
        length = delivery.path.stat().st_size
        if batch and size + length > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(delivery)
        size += length
    if batch:
        yield batch


class StowRsSender:
    """Sends result files to a DICOMweb destination by STOW-RS."""

    def __init__(self, destination: DicomWebDestination, timeout_s: float) -> None:
        self.destination = destination
        self.timeout_s = timeout_s

    def send(
        self, deliveries: Sequence[Delivery], stop: threading.Event
    ) -> Iterator[tuple[Delivery, str | None]]:
        """POST the files in requests of :data:`REQUEST_MAX_BYTES`; see :class:`~.sender.Sender`."""
        for batch in batches(deliveries, REQUEST_MAX_BYTES):
            if stop.is_set():
                return
            yield from self._post(batch)

    def _post(self, batch: Sequence[Delivery]) -> Iterator[tuple[Delivery, str | None]]:
        boundary = f"iqgate-{secrets.token_hex(16)}"
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": DICOM_JSON,
        }
        authorization = self.destination.authorization()
        if authorization is not None:
            headers["Authorization"] = authorization
        body = multipart_body([d.path.read_bytes() for d in batch], boundary)
        try:
            answer = post(
                f"{self.destination.root}/studies",
                body,
                headers,
                self.destination.tls,
                self.timeout_s,
            )
        except POST_ERRORS as exc:
            for delivery in batch:
                yield delivery, f"STOW-RS request failed: {type(exc).__name__}: {exc}"
            return
        failed = failed_instances(answer)
        for delivery in batch:
            if delivery.sop_instance_uid in failed:
                yield delivery, f"HTTP {answer.status}: {failed[delivery.sop_instance_uid]}"
            elif answer.status in STORED_STATUSES:
                yield delivery, None
            else:
                yield (
                    delivery,
                    f"HTTP {answer.status}: {answer.body[:200].decode(errors='replace')}",
                )
