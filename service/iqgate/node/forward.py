"""The forwarder: C-STORE SCU of results to each PACS destination, with back-off.

One thread per destination takes due deliveries from the spool, sends them over one
association and records each outcome; failures back off exponentially and end as dead
letters after the retry limit. Receiving never waits for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE

from iqgate.config import Destination, Settings
from iqgate.node.logs import get_logger
from iqgate.node.metrics import NodeMetrics
from iqgate.node.store.records import Delivery
from iqgate.node.store.spool import Spool

log = get_logger("forward")
SUCCESS_OR_WARNING = {0x0000, 0x0107, 0x0116, 0xB000, 0xB007, 0xB006}
CLAIM_LIMIT = 32


@dataclass(frozen=True)
class ExponentialBackoff:
    """Retry after ``base_s``, doubling per attempt up to ``max_s``; give up at ``limit``."""

    limit: int
    base_s: float
    max_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ExponentialBackoff:
        """The back-off of the ``retry_*`` settings."""
        return cls(settings.retry_limit, settings.retry_base_s, settings.retry_max_s)

    def retry_after_s(self, attempts: int) -> float | None:
        """Seconds until attempt ``attempts + 1``, or None after the last allowed one."""
        if attempts >= self.limit:
            return None
        return min(self.max_s, self.base_s * 2 ** (attempts - 1))


def _contexts(paths: Sequence[Path]) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {}
    for path in paths:
        meta = read_file_meta_info(path)
        needed.setdefault(str(meta.MediaStorageSOPClassUID), set()).add(str(meta.TransferSyntaxUID))
    return needed


class Forwarder:
    """Deliver results to one destination until stopped."""

    def __init__(
        self, destination: Destination, settings: Settings, spool: Spool, metrics: NodeMetrics
    ) -> None:
        self.destination = destination
        self.settings = settings
        self.spool = spool
        self.metrics = metrics
        self.retry = ExponentialBackoff.from_settings(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"forward-{destination}", daemon=True
        )

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deliveries = self.spool.deliveries.claim(
                    str(self.destination), CLAIM_LIMIT, lease_s=self.settings.forward_timeout_s * 4
                )
                if deliveries:
                    self.send(deliveries)
                else:
                    self._stop.wait(0.25)
            except Exception:
                log.exception("forwarder_error", destination=str(self.destination))
                self._stop.wait(1.0)
        self.spool.close()

    def _failed(self, delivery: Delivery, error: str) -> None:
        dead = self.spool.deliveries.failed(delivery.id, error, self.retry)
        self.metrics.forwards.labels(str(self.destination), "dead" if dead else "failure").inc()
        log.warning(
            "forward_failed",
            destination=str(self.destination),
            error=error,
            sop_instance_uid=delivery.sop_instance_uid,
            attempt=delivery.attempts + 1,
            dead_letter=dead,
        )

    def send(self, deliveries: Sequence[Delivery]) -> None:
        """Send these deliveries over one association and record each outcome."""
        present = [d for d in deliveries if d.path.is_file()]
        for missing in set(deliveries) - set(present):
            self._failed(missing, f"result file {missing.path} is missing")
        if not present:
            return
        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.acse_timeout = s.forward_timeout_s
        ae.dimse_timeout = s.forward_timeout_s
        ae.network_timeout = s.forward_timeout_s
        for sop_class, syntaxes in _contexts([d.path for d in present]).items():
            ae.add_requested_context(sop_class, sorted(syntaxes))
        started = time.perf_counter()
        assoc = ae.associate(
            self.destination.host, self.destination.port, ae_title=self.destination.ae_title
        )
        if not assoc.is_established:
            for delivery in present:
                self._failed(delivery, "association not established (peer down or refused)")
            return
        handled: set[int] = set()
        try:
            for delivery in present:
                if self._stop.is_set() or not assoc.is_established:
                    break
                status = assoc.send_c_store(delivery.path)
                code = int(status.Status) if status and "Status" in status else None
                handled.add(delivery.id)
                if code in SUCCESS_OR_WARNING:
                    self.spool.deliveries.succeeded(delivery.id)
                    self.metrics.forwards.labels(str(self.destination), "success").inc()
                    log.info(
                        "forwarded",
                        destination=str(self.destination),
                        kind=delivery.kind,
                        sop_instance_uid=delivery.sop_instance_uid,
                    )
                else:
                    detail = f"status 0x{code:04X}" if code is not None else "no response"
                    self._failed(delivery, detail)
        finally:
            if assoc.is_established:
                assoc.release()
            for delivery in present:
                if delivery.id not in handled:
                    self.spool.deliveries.release(delivery.id)
            self.metrics.stage_seconds.labels("forward").observe(
                (time.perf_counter() - started) / max(1, len(handled))
            )
