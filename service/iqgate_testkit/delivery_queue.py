"""A spool whose one job's outputs wait for delivery, for tests of senders and loops."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from iqgate.node.delivery.loop import DeliveryLoop
from iqgate.node.delivery.policy import ExponentialBackoff
from iqgate.node.delivery.sender import Sender
from iqgate.node.ops.metrics import NodeMetrics
from iqgate.node.store.records import InstanceInfo, OutputFile
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobVerdict

SOURCE = InstanceInfo("2.25.1001", "1.2.840.10008.5.1.4.1.1.1.1", "2.25.1", "2.25.2", "DX", "CT1")


def spool_with_outputs(
    root: Path, outputs: Sequence[OutputFile], destinations: Sequence[str]
) -> Spool:
    """A spool at ``root`` holding one assessed job whose ``outputs`` are due at every
    one of ``destinations``."""
    spool = Spool(root, max_bytes=10**9)
    job_id = spool.accept(b"source", SOURCE).job_id
    spool.jobs.claim_received("test", 1, 60)
    spool.jobs.finish_assessment(
        job_id,
        verdict=JobVerdict.FLAGGED,
        report_path=None,
        deliveries=[(o, d) for o in outputs for d in destinations],
    )
    return spool


def deliver_once(spool: Spool, destination: str, sender: Sender, *, limit: int = 3) -> None:
    """Claim what is due at ``destination`` and send it once through a delivery loop
    (no back-off between attempts, dead after ``limit``)."""
    retry = ExponentialBackoff(limit, base_s=0.0, max_s=0.0)
    loop = DeliveryLoop(destination, sender, spool, NodeMetrics(), retry, lease_s=60)
    loop.send(spool.deliveries.claim(destination, 100, 60))
