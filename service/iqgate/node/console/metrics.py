"""The console's Prometheus metric, served on the node's own ``/metrics``: the feedback
given, by model and kind, read from the console's index at scrape time (feedback can be
changed, so these are gauges of the current answers, not counters).

The main process registers :class:`FeedbackCollector` over
:func:`read_feedback_counts`, so one scrape target holds the node's and the console's
figures. Together they are the gate's live precision as the technologists see it, for
example ``agree / (agree + false_alarm)`` of a model.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from iqgate.node.console.feedback import FeedbackKind
from iqgate.node.console.index import FEEDBACK_COUNTS

Counts = dict[tuple[str, str], int]
"""Images per (model, feedback kind)."""


def read_feedback_counts(index_path: Path) -> Counts:
    """The feedback counts in the console index at ``index_path``, read-only (none while
    the console has not created it)."""
    if not index_path.exists():
        return {}
    connection = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True, timeout=5.0)
    try:
        return {(model, kind): n for model, kind, n in connection.execute(FEEDBACK_COUNTS)}
    finally:
        connection.close()


class FeedbackCollector(Collector):
    """``iqgate_console_feedback{model, kind}``: images with that feedback."""

    def __init__(self, counts: Callable[[], Counts]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "iqgate_console_feedback",
            "Assessed images with technologists' feedback in the console, by model and kind",
            labels=["model", "kind"],
        )
        counts = self._counts()
        for model in sorted({model for model, _ in counts}):
            for kind in FeedbackKind:
                family.add_metric([model, kind.value], counts.get((model, kind.value), 0))
        yield family
