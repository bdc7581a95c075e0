"""Classification metrics and decision thresholds, in numpy (no scikit-learn needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(int).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in length")
    if not set(np.unique(labels)) <= {0, 1}:
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(np.unique(labels)))}")
    return labels, scores


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); NaN with one class."""
    labels, scores = _check(labels, scores)
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    u = ranks[labels == 1].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


@dataclass(frozen=True)
class BinaryScores:
    """Accuracy, sensitivity and specificity at one threshold (score >= threshold is positive)."""

    threshold: float
    accuracy: float
    sensitivity: float
    specificity: float


def scores_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> BinaryScores:
    """Binary scores of ``scores >= threshold`` against ``labels``."""
    labels, scores = _check(labels, scores)
    predicted = scores >= threshold
    positives = labels == 1
    sensitivity = float(predicted[positives].mean()) if positives.any() else float("nan")
    specificity = float((~predicted[~positives]).mean()) if (~positives).any() else float("nan")
    return BinaryScores(threshold, float((predicted == positives).mean()), sensitivity, specificity)


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold maximising sensitivity + specificity - 1 (Youden's J) on these scores.

    Candidates are the observed scores; among equal J the highest threshold wins, which
    flags fewer images. The result lies halfway to the next lower score, so that it is
    not sitting on an observed value.
    """
    labels, scores = _check(labels, scores)
    candidates = np.unique(scores)[::-1]
    best, best_j = float(candidates[0]), -np.inf
    for value in candidates:
        s = scores_at(labels, scores, float(value))
        j = s.sensitivity + s.specificity - 1
        if j > best_j + 1e-12:
            best, best_j = float(value), j
    lower = scores[scores < best]
    return (best + float(lower.max())) / 2 if lower.size else best


def sensitivity_threshold(labels: np.ndarray, scores: np.ndarray, sensitivity: float) -> float:
    """The highest threshold whose sensitivity on these scores is at least ``sensitivity``."""
    labels, scores = _check(labels, scores)
    if not 0 < sensitivity <= 1:
        raise ValueError(f"target sensitivity must be in (0, 1], got {sensitivity}")
    positive_scores = np.sort(scores[labels == 1])[::-1]
    if positive_scores.size == 0:
        raise ValueError("cannot choose a threshold for a sensitivity without positive images")
    needed = int(np.ceil(sensitivity * positive_scores.size))
    return float(positive_scores[needed - 1])


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a proportion ``hits / n`` (95 % with ``z = 1.96``); None if n = 0.

    >>> [round(v, 3) for v in wilson_interval(8, 10)]
    [0.49, 0.943]
    """
    if n == 0:
        return None
    if not 0 <= hits <= n:
        raise ValueError(f"hits must lie in [0, n]; got hits={hits}, n={n}")
    p = hits / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
