"""The delivery loop: one thread per destination claims due outputs, sends them through
its :class:`~.sender.Sender` and records each outcome; failures back off by the retry
policy and end as dead letters. Receiving never waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from iqgate.node.delivery.sender import Sender
from iqgate.node.ops.events import StageEvents
from iqgate.node.ops.logs import get_logger
from iqgate.node.store.deliveries import RetryPolicy
from iqgate.node.store.records import Delivery
from iqgate.node.store.spool import Spool

log = get_logger("forward")
CLAIM_LIMIT = 32
IDLE_POLL_S = 0.25
ERROR_PAUSE_S = 1.0


class DeliveryLoop:
    """Deliver results to one destination until stopped."""

    def __init__(
        self,
        destination: str,
        sender: Sender,
        spool: Spool,
        metrics: StageEvents,
        retry: RetryPolicy,
        *,
        lease_s: float,
    ) -> None:
        self.destination = destination
        self.sender = sender
        self.spool = spool
        self.metrics = metrics
        self.retry = retry
        self.lease_s = lease_s
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
                    self.destination, CLAIM_LIMIT, self.lease_s
                )
                if deliveries:
                    self.send(deliveries)
                else:
                    self._stop.wait(IDLE_POLL_S)
            except Exception:
                log.exception("forwarder_error", destination=self.destination)
                self._stop.wait(ERROR_PAUSE_S)
        self.spool.close()

    def send(self, deliveries: Sequence[Delivery]) -> None:
        """Send these deliveries and record each outcome; the rest go back to the queue."""
        present = [d for d in deliveries if d.path.is_file()]
        for missing in set(deliveries) - set(present):
            self._failed(missing, f"result file {missing.path} is missing")
        if not present:
            return
        started = time.perf_counter()
        handled: set[int] = set()
        try:
            for delivery, error in self.sender.send(present, self._stop):
                handled.add(delivery.id)
                if error is None:
                    self._succeeded(delivery)
                else:
                    self._failed(delivery, error)
        finally:
            for delivery in present:
                if delivery.id not in handled:
                    self.spool.deliveries.release(delivery.id)
            self.metrics.stage_time(
                "forward", (time.perf_counter() - started) / max(1, len(handled))
            )

    def _succeeded(self, delivery: Delivery) -> None:
        self.spool.deliveries.succeeded(delivery.id)
        self.metrics.delivery_attempted(self.destination, "success")
        log.info(
            "forwarded",
            destination=self.destination,
            kind=delivery.kind,
            sop_instance_uid=delivery.sop_instance_uid,
        )

    def _failed(self, delivery: Delivery, error: str) -> None:
        dead = self.spool.deliveries.failed(delivery.id, error, self.retry)
        self.metrics.delivery_attempted(self.destination, "dead" if dead else "failure")
        log.warning(
            "forward_failed",
            destination=self.destination,
            error=error,
            sop_instance_uid=delivery.sop_instance_uid,
            attempt=delivery.attempts + 1,
            dead_letter=dead,
        )
