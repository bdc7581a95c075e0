"""Prometheus metrics of the node, in a registry of its own (``iqgate_`` prefix).

Labels carry only bounded, non-identifying values: outcomes, stages, model names,
destinations (``AE@host:port``). No UID or patient attribute is ever a label.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from multiprocessing import Queue

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from iqgate.node.store.queries import SpoolQueries
from iqgate.node.store.states import DeliveryState

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 5, 10, 30, 60, 300)
CSTORE_BUCKETS_S = (
    0.001,
    0.002,
    0.004,
    0.006,
    0.008,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
"""Finer at the low end: the receive path's target is a p99 under 100 ms."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
STAGES = ("decode", "inference", "explain", "encode", "forward")


class SpoolCollector(Collector):
    """Queue depth, disk use and dead letters, read from the spool at scrape time."""

    def __init__(self, spool: SpoolQueries) -> None:
        self._spool = spool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("iqgate_queue_depth", "Jobs per state", labels=["state"])
        for state, count in self._spool.counts().items():
            depth.add_metric([state.value], count)
        yield depth
        used = GaugeMetricFamily("iqgate_spool_bytes", "Bytes of received instances in the spool")
        used.add_metric([], self._spool.used_bytes)
        yield used
        deliveries = GaugeMetricFamily(
            "iqgate_deliveries",
            "Outputs per destination and delivery state",
            labels=["destination", "state"],
        )
        dead = GaugeMetricFamily(
            "iqgate_dead_letters",
            "Outputs that ran out of delivery retries",
            labels=["destination"],
        )
        dead_by_destination: dict[str, int] = {}
        for (destination, state), count in self._spool.deliveries_by_state().items():
            deliveries.add_metric([destination, state.value], count)
            if state is DeliveryState.DEAD:
                dead_by_destination[destination] = count
        for destination, count in dead_by_destination.items():
            dead.add_metric([destination], count)
        yield deliveries
        yield dead


class NodeMetrics:
    """Every metric the node exports."""

    def __init__(self, spool: SpoolQueries | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.associations = Counter(
            "iqgate_associations", "Associations by outcome", ["outcome"], registry=r
        )
        self.instances = Counter(
            "iqgate_instances", "C-STORE requests by outcome", ["outcome"], registry=r
        )
        self.store_seconds = Histogram(
            "iqgate_cstore_response_seconds",
            "Time to answer a C-STORE",
            buckets=CSTORE_BUCKETS_S,
            registry=r,
        )
        self.last_received = Gauge(
            "iqgate_last_received_timestamp_seconds",
            "Unix time of the last stored instance",
            registry=r,
        )
        self.batch_size = Histogram(
            "iqgate_batch_size", "Images per inference batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.stage_seconds = Histogram(
            "iqgate_stage_seconds",
            "Time per stage and image",
            ["stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "iqgate_end_to_end_seconds",
            "From receipt to results written",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.verdicts = Counter(
            "iqgate_verdicts",
            "Assessed images by model and verdict",
            ["model", "verdict"],
            registry=r,
        )
        self.not_assessed = Counter(
            "iqgate_not_assessed", "Images no model applies to, by reason", ["reason"], registry=r
        )
        self.jobs_failed = Counter(
            "iqgate_jobs_failed", "Jobs that failed, by stage", ["stage"], registry=r
        )
        self.forwards = Counter(
            "iqgate_forwards",
            "C-STORE attempts to destinations by outcome",
            ["destination", "outcome"],
            registry=r,
        )
        self.ready = Gauge(
            "iqgate_ready", "1 when the node accepts and processes images", registry=r
        )
        for stage in STAGES:
            self.stage_seconds.labels(stage)
        if spool is not None:
            r.register(SpoolCollector(spool))


RELAYED = frozenset(
    {
        "batch_size",
        "end_to_end_seconds",
        "forwards",
        "jobs_failed",
        "not_assessed",
        "stage_seconds",
        "verdicts",
    }
)
"""The metrics the pipeline process updates (see :mod:`iqgate.node.app`)."""
RECEIVING = frozenset({"associations", "instances", "store_seconds", "last_received"})
"""The metrics an extra receiving process updates (``IQGATE_RECEIVE_PROCESSES``)."""
_APPLICABLE = RELAYED | RECEIVING
RelayedEvent = tuple[str, tuple[str, ...], str, float]
"""(metric attribute, label values, method: inc | observe | set, amount)."""


RELAY_INTERVAL_S = 0.25
"""How often the pipeline process sends its pending metric updates (one message)."""


class _RelayedMetric:
    """Stands in for a prometheus metric in another process: updates are relayed."""

    def __init__(self, relay: RelayedMetrics, name: str, labels: tuple[str, ...] = ()) -> None:
        self._relay = relay
        self._name = name
        self._labels = labels

    def labels(self, *values: str) -> _RelayedMetric:
        return _RelayedMetric(self._relay, self._name, tuple(str(v) for v in values))

    def inc(self, amount: float = 1.0) -> None:
        self._relay.add((self._name, self._labels, "inc", float(amount)))

    def observe(self, amount: float) -> None:
        self._relay.add((self._name, self._labels, "observe", float(amount)))

    def set(self, value: float) -> None:
        self._relay.add((self._name, self._labels, "set", float(value)))


class RelayedMetrics:
    """Another process's view of :class:`NodeMetrics`: the same names, relayed updates.

    ``names`` are the metrics it updates (:data:`RELAYED` for the pipeline process,
    :data:`RECEIVING` for an extra receiving process). Updates are collected and sent
    as one list every :data:`RELAY_INTERVAL_S`, so the main process spends little time
    on them; a gauge set by several processes may step back by up to that interval.
    """

    def __init__(self, queue: Queue, names: frozenset[str] = RELAYED) -> None:  # type: ignore[type-arg]
        self._queue = queue
        self._pending: list[RelayedEvent] = []
        self._lock = threading.Lock()
        for name in names:
            setattr(self, name, _RelayedMetric(self, name))
        threading.Thread(target=self._send, name="metrics-relay", daemon=True).start()

    def add(self, event: RelayedEvent) -> None:
        with self._lock:
            self._pending.append(event)

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


def apply_relayed(metrics: NodeMetrics, events: list[RelayedEvent]) -> None:
    """Apply relayed updates to the receiving process's metrics."""
    for name, labels, method, amount in events:
        if name not in _APPLICABLE or method not in ("inc", "observe", "set"):
            raise ValueError(f"not a relayed metric update: {(name, labels, method)!r}")
        metric = getattr(metrics, name)
        if labels:
            metric = metric.labels(*labels)
        getattr(metric, method)(amount)
