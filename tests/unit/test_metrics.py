"""AUC and threshold rules on hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iqgate.study.metrics import roc_auc, scores_at, sensitivity_threshold, youden_threshold


def test_auc_of_perfect_reversed_and_tied_scores():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    # one positive below one negative: 3 of 4 pairs ordered
    assert roc_auc(labels, np.array([0.1, 0.6, 0.5, 0.9])) == 0.75


def test_auc_with_one_class_is_nan():
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_youden_threshold_separates_separable_scores():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    threshold = youden_threshold(labels, scores)
    assert 0.3 < threshold <= 0.7
    s = scores_at(labels, scores, threshold)
    assert (s.accuracy, s.sensitivity, s.specificity) == (1.0, 1.0, 1.0)


def test_sensitivity_threshold_keeps_the_asked_sensitivity():
    labels = np.array([1, 1, 1, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.4, 0.3, 0.35, 0.1])
    threshold = sensitivity_threshold(labels, scores, 0.75)
    assert threshold == 0.4
    assert scores_at(labels, scores, threshold).sensitivity == 0.75


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="0 or 1"):
        roc_auc(np.array([0, 2]), np.array([0.1, 0.2]))
