"""The console's Prometheus metrics, in a registry of its own served at the console's
``/metrics``: the feedback given, by model and kind, read from the index at scrape time
(feedback can be changed, so these are gauges of the current answers, not counters).

Together they are the gate's live precision as the technologists see it, for example
``agree / (agree + false_alarm)`` on flagged images.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from iqgate.node.console.feedback import FeedbackKind
from iqgate.node.console.index import ConsoleIndex


class FeedbackCollector(Collector):
    """``iqgate_console_feedback{model, kind}``: images with that feedback."""

    def __init__(self, index: ConsoleIndex) -> None:
        self._index = index

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "iqgate_console_feedback",
            "Assessed images with technologists' feedback, by model and kind",
            labels=["model", "kind"],
        )
        counts = self._index.feedback_counts()
        models = {model for model, _ in counts}
        for model in sorted(models):
            for kind in FeedbackKind:
                family.add_metric([model, kind.value], counts.get((model, kind.value), 0))
        yield family


def console_registry(index: ConsoleIndex) -> CollectorRegistry:
    """A registry holding the console's metrics."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(FeedbackCollector(index))
    return registry
