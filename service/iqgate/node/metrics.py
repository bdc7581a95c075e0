"""Prometheus metrics of the node, in a registry of its own (``iqgate_`` prefix).

Labels carry only bounded, non-identifying values: outcomes, stages, model names,
destinations (``AE@host:port``). No UID or patient attribute is ever a label.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from iqgate.node.spool import DeliveryState, Spool

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
STAGES = ("decode", "inference", "explain", "encode", "forward")


class SpoolCollector(Collector):
    """Queue depth, disk use and dead letters, read from the spool at scrape time."""

    def __init__(self, spool: Spool) -> None:
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
            deliveries.add_metric([destination, state], count)
            if state == DeliveryState.DEAD.value:
                dead_by_destination[destination] = count
        for destination, count in dead_by_destination.items():
            dead.add_metric([destination], count)
        yield deliveries
        yield dead


class NodeMetrics:
    """Every metric the node exports."""

    def __init__(self, spool: Spool | None = None) -> None:
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
            buckets=LATENCY_BUCKETS_S,
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
