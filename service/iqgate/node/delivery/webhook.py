"""The webhook sender: each image's JSON report POSTed to a URL, signed with HMAC-SHA256.

The body is the report file as written (docs/report.schema.json: a list with one
report per frame); ``X-Iqgate-Signature: sha256=<hex>`` is the HMAC-SHA256 of the body
with the shared secret, and ``X-Iqgate-Delivery`` a stable key for the receiver to drop
repeats (delivery is at least once). Any 2xx answer means the report arrived.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator, Sequence

from iqgate.destinations import WebhookDestination
from iqgate.node.delivery.http_post import POST_ERRORS, post
from iqgate.node.store.records import Delivery

SIGNATURE_HEADER = "X-Iqgate-Signature"
DELIVERY_HEADER = "X-Iqgate-Delivery"
REPORT_KIND = "report"


def signature(secret: bytes, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def delivery_key(delivery: Delivery) -> str:
    """A key that is the same on every attempt of one report to one destination."""
    return hashlib.sha256(
        f"{delivery.destination}\n{delivery.sop_instance_uid}".encode()
    ).hexdigest()


class WebhookSender:
    """POSTs JSON reports to a webhook URL, one request per report."""

    def __init__(self, destination: WebhookDestination, timeout_s: float) -> None:
        self.destination = destination
        self.timeout_s = timeout_s

    def send(
        self, deliveries: Sequence[Delivery], stop: threading.Event
    ) -> Iterator[tuple[Delivery, str | None]]:
        """POST each report; see :class:`~.sender.Sender`."""
        secret = self.destination.secret()
        for delivery in deliveries:
            if stop.is_set():
                return
            if delivery.kind != REPORT_KIND:
                yield delivery, f"a webhook takes JSON reports, not {delivery.kind!r} outputs"
                continue
            body = delivery.path.read_bytes()
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(secret, body),
                DELIVERY_HEADER: delivery_key(delivery),
            }
            try:
                answer = post(
                    self.destination.url, body, headers, self.destination.tls, self.timeout_s
                )
            except POST_ERRORS as exc:
                yield delivery, f"webhook request failed: {type(exc).__name__}: {exc}"
                continue
            if 200 <= answer.status < 300:
                yield delivery, None
            else:
                yield (
                    delivery,
                    f"HTTP {answer.status}: {answer.body[:200].decode(errors='replace')}",
                )
