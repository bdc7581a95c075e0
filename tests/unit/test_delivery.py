"""The delivery loop records what its sender reports, backs off failures by the policy
it is given, and puts back what was not sent; destinations are dicom:// URLs."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from iqgate.node.delivery.loop import DeliveryLoop
from iqgate.node.delivery.policy import ExponentialBackoff
from iqgate.node.ops.metrics import NodeMetrics
from iqgate.node.store.records import Delivery, InstanceInfo, OutputFile
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import DeliveryState, JobState, JobVerdict

DESTINATION = "PACS@host:104"


class ScriptedSender:
    """Answers each delivery with the next scripted outcome; stops after ``handles``."""

    def __init__(self, outcomes: Sequence[str | None], handles: int | None = None) -> None:
        self.outcomes = list(outcomes)
        self.handles = handles
        self.batches: list[list[int]] = []

    def send(
        self, deliveries: Sequence[Delivery], stop: threading.Event
    ) -> Iterator[tuple[Delivery, str | None]]:
        self.batches.append([d.id for d in deliveries])
        for index, delivery in enumerate(deliveries):
            if self.handles is not None and index >= self.handles:
                return
            yield delivery, self.outcomes.pop(0)


@pytest.fixture()
def ready_spool(tmp_path) -> Spool:
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    info = InstanceInfo("1.2.3.4.1", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.3", "1.2.3.4", "DX", "CT")
    job_id = spool.accept(b"x", info).job_id
    spool.jobs.claim_received("w", 1, 60)
    outputs = []
    for n in range(3):
        path = tmp_path / f"out{n}.dcm"
        path.write_bytes(b"result")
        outputs.append(OutputFile("sr", path, f"2.25.{n}"))
    spool.jobs.finish_assessment(
        job_id,
        verdict=JobVerdict.PASS,
        report_path=None,
        deliveries=[(o, d) for o in outputs for d in [DESTINATION]],
    )
    return spool


def loop_with(spool: Spool, sender: ScriptedSender, limit: int = 2) -> DeliveryLoop:
    retry = ExponentialBackoff(limit, base_s=0.0, max_s=0.0)
    return DeliveryLoop(DESTINATION, sender, spool, NodeMetrics(), retry, lease_s=60)


def test_outcomes_are_recorded_and_failures_end_as_dead_letters(ready_spool):
    sender = ScriptedSender([None, "status 0xA700", None, "status 0xA700"])
    loop = loop_with(ready_spool, sender)
    loop.send(ready_spool.deliveries.claim(DESTINATION, 10, 60))
    counts = ready_spool.query.deliveries_by_state()
    assert counts == {
        (DESTINATION, DeliveryState.DELIVERED): 2,
        (DESTINATION, DeliveryState.PENDING): 1,
    }
    loop.send(ready_spool.deliveries.claim(DESTINATION, 10, 60))  # due at once: base_s is 0
    [dead] = ready_spool.query.dead_letters()
    assert dead.attempts == 2 and sender.batches[1] == [dead.id]
    assert ready_spool.query.counts()[JobState.RESULTS_READY] == 1


def test_what_the_sender_did_not_handle_goes_back_without_an_attempt(ready_spool):
    loop = loop_with(ready_spool, ScriptedSender([None], handles=1))
    loop.send(ready_spool.deliveries.claim(DESTINATION, 10, 60))
    again = ready_spool.deliveries.claim(DESTINATION, 10, 60)
    assert len(again) == 2 and all(d.attempts == 0 for d in again)


def test_a_missing_result_file_is_a_failed_attempt(ready_spool):
    deliveries = ready_spool.deliveries.claim(DESTINATION, 10, 60)
    deliveries[0].path.unlink()
    sender = ScriptedSender([None, None])
    loop_with(ready_spool, sender).send(deliveries)
    assert sender.batches == [[d.id for d in deliveries[1:]]]
    assert ready_spool.query.deliveries_by_state()[(DESTINATION, DeliveryState.PENDING)] == 1
