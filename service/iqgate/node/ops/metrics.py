"""Prometheus metrics of the node, in a registry of its own (``iqgate_`` prefix), updated
by the stages' events (:class:`~iqgate.node.ops.events.StageEvents`) and, at scrape
time, by the store's queries.

Labels carry only bounded, non-identifying values: outcomes, stages, model names,
destinations (``AE@host:port``). No UID or patient attribute is ever a label.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from iqgate.node.ops.events import STAGES, Stage
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
    """Every metric the node exports; the :class:`~iqgate.node.ops.events.StageEvents`
    of the receiving process (and, relayed, of the others) update them."""

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
        self.stow_instances = Counter(
            "iqgate_stow_instances", "STOW-RS instances by outcome", ["outcome"], registry=r
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
            "Delivery attempts (C-STORE, STOW-RS, webhook) to destinations by outcome",
            ["destination", "outcome"],
            registry=r,
        )
        self.unrouted = Counter(
            "iqgate_unrouted_images",
            "Images no delivery rule matches (sent nowhere), by verdict",
            ["verdict"],
            registry=r,
        )
        self.results_purged_files = Counter(
            "iqgate_results_purged_files",
            "Result files removed by results retention (IQGATE_RESULTS_RETENTION_S)",
            registry=r,
        )
        self.results_purged_bytes = Counter(
            "iqgate_results_purged_bytes", "Bytes of result files removed by retention", registry=r
        )
        self.ready = Gauge(
            "iqgate_ready", "1 when the node accepts and processes images", registry=r
        )
        for stage in STAGES:
            self.stage_seconds.labels(stage)
        if spool is not None:
            r.register(SpoolCollector(spool))

    # -- stage events --------------------------------------------------------------------
    def association(self, outcome: str) -> None:
        """An association was accepted, rejected or aborted."""
        self.associations.labels(outcome).inc()

    def c_store_answered(self, outcome: str, seconds: float) -> None:
        """A C-STORE was answered after ``seconds``."""
        self.store_seconds.observe(seconds)
        self.instances.labels(outcome).inc()

    def stow_answered(self, outcome: str) -> None:
        """A STOW-RS instance was stored or refused."""
        self.stow_instances.labels(outcome).inc()

    def instance_stored(self, at: float) -> None:
        """An instance is durably in the spool."""
        self.last_received.set(at)

    def stage_time(self, stage: Stage, seconds: float) -> None:
        """One image spent ``seconds`` in a stage."""
        self.stage_seconds.labels(stage).observe(seconds)

    def batch_assessed(self, frames: int) -> None:
        """A model assessed a batch of ``frames`` frames."""
        self.batch_size.observe(frames)

    def image_assessed(self, model: str, verdict: str, end_to_end_s: float) -> None:
        """An image's results are written."""
        self.verdicts.labels(model, verdict).inc()
        self.end_to_end_seconds.observe(end_to_end_s)

    def image_not_assessed(self, reason: str) -> None:
        """No model applies to an image."""
        self.not_assessed.labels(reason).inc()

    def job_failed(self, stage: str) -> None:
        """A job failed in ``stage``."""
        self.jobs_failed.labels(stage).inc()

    def delivery_attempted(self, destination: str, outcome: str) -> None:
        """An output was sent, failed, or became a dead letter."""
        self.forwards.labels(destination, outcome).inc()

    def image_unrouted(self, verdict: str) -> None:
        """No delivery rule matches an image."""
        self.unrouted.labels(verdict).inc()

    def results_purged(self, files: int, size_bytes: int) -> None:
        """Results retention removed files."""
        self.results_purged_files.inc(files)
        self.results_purged_bytes.inc(size_bytes)
