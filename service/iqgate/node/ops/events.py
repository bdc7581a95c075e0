"""What the stages report at their boundaries: the :class:`StageEvents` protocol.

The receiving process applies events to its Prometheus metrics
(:class:`~iqgate.node.ops.metrics.NodeMetrics`); the pipeline process and extra
receivers relay them to it (:class:`~iqgate.node.ops.relay.RelayedEvents`). Values are
bounded and non-identifying (outcomes, stages, model names, destinations): no UID or
patient attribute is ever reported.
"""

from __future__ import annotations

from typing import Literal, Protocol

Stage = Literal["decode", "inference", "explain", "encode", "forward"]
STAGES: tuple[Stage, ...] = ("decode", "inference", "explain", "encode", "forward")


class StageEvents(Protocol):
    """The events of ingest, pipeline and delivery."""

    def association(self, outcome: str) -> None:
        """An association was accepted, rejected or aborted."""
        ...

    def c_store_answered(self, outcome: str, seconds: float) -> None:
        """A C-STORE was answered (stored, duplicate, refused...) after ``seconds``."""
        ...

    def stow_answered(self, outcome: str) -> None:
        """A STOW-RS instance was stored or refused (outcome: its failure reason)."""
        ...

    def instance_stored(self, at: float) -> None:
        """An instance is durably in the spool (Unix time ``at``)."""
        ...

    def stage_time(self, stage: Stage, seconds: float) -> None:
        """One image spent ``seconds`` in a pipeline or delivery stage."""
        ...

    def batch_assessed(self, frames: int) -> None:
        """A model assessed a batch of ``frames`` frames."""
        ...

    def image_assessed(self, model: str, verdict: str, end_to_end_s: float) -> None:
        """An image's results are written, ``end_to_end_s`` after its receipt."""
        ...

    def image_not_assessed(self, reason: str) -> None:
        """No model applies to an image (or it is the node's own output)."""
        ...

    def job_failed(self, stage: str) -> None:
        """A job failed in ``stage``."""
        ...

    def delivery_attempted(self, destination: str, outcome: str) -> None:
        """An output was sent (success), failed, or became a dead letter."""
        ...

    def image_unrouted(self, verdict: str) -> None:
        """No delivery rule matches an image with this verdict: it goes nowhere."""
        ...

    def results_purged(self, files: int, size_bytes: int) -> None:
        """Results retention removed ``files`` result files of ``size_bytes`` in all."""
        ...


EVENT_NAMES = frozenset(name for name in vars(StageEvents) if not name.startswith("_"))
"""The methods of :class:`StageEvents`: the only ones a relayed event may call."""
