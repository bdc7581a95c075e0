"""A split with one class gives a card that still loads."""

from __future__ import annotations

import numpy as np

from iqgate.packages import SplitMetrics
from iqgate.study.packaging import split_metrics


def test_a_one_class_split_has_no_auc_and_its_metrics_survive_json() -> None:
    metrics = split_metrics(np.zeros(6, dtype=int), np.linspace(0.1, 0.9, 6), threshold=0.5)
    assert metrics.auc is None and metrics.sensitivity is None
    assert metrics.specificity == 0.5 and metrics.accuracy == 0.5
    assert SplitMetrics.model_validate_json(metrics.model_dump_json()) == metrics


def test_a_two_class_split_keeps_its_scores() -> None:
    metrics = split_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.6, 0.9]), 0.5)
    assert metrics.auc == 1.0 and metrics.sensitivity == 1.0 and metrics.specificity == 1.0
