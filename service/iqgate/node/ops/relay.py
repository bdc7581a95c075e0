"""Stage events from another process of the node, relayed in batches to the main one."""

from __future__ import annotations

import threading
import time
from multiprocessing.queues import Queue

from iqgate.node.ops.events import EVENT_NAMES, Stage, StageEvents

RelayedEvent = tuple[str, tuple[str | float | int, ...]]
"""(a :class:`StageEvents` method name, its arguments)."""

RELAY_INTERVAL_S = 0.25
"""How often a child process sends its pending events (one message)."""


class RelayedEvents:
    """:class:`StageEvents` in a child process: each event is queued for the main one.

    Events are collected and sent as one list every :data:`RELAY_INTERVAL_S`, so the
    main process spends little time on them.
    """

    def __init__(self, queue: Queue[list[RelayedEvent] | None]) -> None:
        self._queue = queue
        self._pending: list[RelayedEvent] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._send, name="metrics-relay", daemon=True).start()

    def _add(self, name: str, *args: str | float) -> None:
        with self._lock:
            self._pending.append((name, args))

    def association(self, outcome: str) -> None:
        self._add("association", outcome)

    def c_store_answered(self, outcome: str, seconds: float) -> None:
        self._add("c_store_answered", outcome, seconds)

    def stow_answered(self, outcome: str) -> None:
        self._add("stow_answered", outcome)

    def instance_stored(self, at: float) -> None:
        self._add("instance_stored", at)

    def stage_time(self, stage: Stage, seconds: float) -> None:
        self._add("stage_time", stage, seconds)

    def batch_assessed(self, frames: int) -> None:
        self._add("batch_assessed", frames)

    def image_assessed(self, model: str, verdict: str, end_to_end_s: float) -> None:
        self._add("image_assessed", model, verdict, end_to_end_s)

    def image_not_assessed(self, reason: str) -> None:
        self._add("image_not_assessed", reason)

    def job_failed(self, stage: str) -> None:
        self._add("job_failed", stage)

    def delivery_attempted(self, destination: str, outcome: str) -> None:
        self._add("delivery_attempted", destination, outcome)

    def image_unrouted(self, verdict: str) -> None:
        self._add("image_unrouted", verdict)

    def results_purged(self, files: int, size_bytes: int) -> None:
        self._add("results_purged", files, size_bytes)

    def flush(self) -> None:
        """Send what is pending now."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._queue.put(batch)

    def _send(self) -> None:
        while True:
            time.sleep(RELAY_INTERVAL_S)
            self.flush()


def apply_relayed(events: StageEvents, batch: list[RelayedEvent]) -> None:
    """Apply relayed events to ``events`` (the main process's metrics)."""
    for name, args in batch:
        if name not in EVENT_NAMES:
            raise ValueError(f"not a stage event: {name!r} (known: {sorted(EVENT_NAMES)})")
        getattr(events, name)(*args)
