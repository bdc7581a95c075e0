"""Stage events relayed from a child process update the node's metrics exactly as the
same events reported in the main process; nothing but a stage event is applied."""

from __future__ import annotations

import queue

import pytest
from prometheus_client import generate_latest

from iqgate.node.ops.events import StageEvents
from iqgate.node.ops.metrics import NodeMetrics
from iqgate.node.ops.relay import RelayedEvents, apply_relayed


def report(events: StageEvents) -> None:
    events.association("accepted")
    events.c_store_answered("stored", 0.004)
    events.stage_time("decode", 0.02)
    events.batch_assessed(3)
    events.image_assessed("cxr", "flagged", 1.5)
    events.image_not_assessed("no model applies")
    events.job_failed("decode")
    events.delivery_attempted("PACS@host:104", "success")


def exposition(metrics: NodeMetrics) -> list[str]:
    lines = generate_latest(metrics.registry).decode().splitlines()
    return [line for line in lines if not line.startswith("#") and "_created" not in line]


def test_relayed_events_equal_direct_ones():
    direct, relayed = NodeMetrics(), NodeMetrics()
    report(direct)
    channel: queue.Queue = queue.Queue()
    relay = RelayedEvents(channel)  # type: ignore[arg-type]
    report(relay)
    relay.flush()
    apply_relayed(relayed, channel.get_nowait())
    assert exposition(relayed) == exposition(direct)


def test_only_stage_events_are_applied():
    with pytest.raises(ValueError, match="not a stage event: 'registry'"):
        apply_relayed(NodeMetrics(), [("registry", ())])
