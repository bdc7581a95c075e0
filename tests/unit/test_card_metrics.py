"""Card metrics: one-class splits still load; phantom splits are split by object kind."""

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


def test_phantom_splits_record_which_kinds_of_object_were_flagged() -> None:
    labels = np.array([0, 1, 1, 1, 0])
    probabilities = np.array([0.7, 0.9, 0.2, 0.6, 0.1])
    kinds = [[], ["wire", "coin"], ["coin"], ["wire"], []]
    metrics = split_metrics(labels, probabilities, 0.5, object_kinds=kinds)
    assert metrics.by_kind is not None
    counts = {
        k.kind: (k.images, k.flagged, k.alone_images, k.alone_flagged) for k in metrics.by_kind
    }
    assert counts == {"coin": (2, 1, 1, 0), "wire": (2, 2, 1, 1)}
    assert SplitMetrics.model_validate_json(metrics.model_dump_json()) == metrics


def test_splits_that_do_not_know_their_objects_have_no_kind_figures() -> None:
    metrics = split_metrics(np.array([0, 1]), np.array([0.2, 0.8]), 0.5)
    assert metrics.by_kind is None
