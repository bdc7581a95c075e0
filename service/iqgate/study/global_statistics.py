"""Whether global grey statistics alone separate the classes of a data set.

If the mean, spread, percentiles, maximum or grey-level histogram of whole images
separate positives from negatives, a classifier can be right without looking at the
target, and its saliency map need not point there. Each statistic's AUC is reported
(the larger of AUC and 1 - AUC), and so is the cross-validated AUC of an L2-regularised
logistic regression on all of them together.
"""

from __future__ import annotations

import numpy as np

from iqgate.study.metrics import roc_auc

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
HISTOGRAM_BINS = 16


def grey_statistics(image: np.ndarray) -> dict[str, float]:
    """Mean, std, percentiles and maximum of one image in [0, 1]."""
    values = np.asarray(image, dtype=np.float64).ravel()
    statistics = {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "max": float(values.max()),
    }
    for q, value in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
        statistics[f"p{q}"] = float(value)
    return statistics


def grey_histogram(image: np.ndarray) -> np.ndarray:
    """Fraction of pixels in each of :data:`HISTOGRAM_BINS` equal bins of [0, 1]."""
    counts, _ = np.histogram(np.asarray(image, dtype=np.float64), HISTOGRAM_BINS, (0.0, 1.0))
    return counts / max(counts.sum(), 1)


def statistic_aucs(images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Each global statistic's AUC for the labels, as ``max(AUC, 1 - AUC)``."""
    table = [grey_statistics(image) for image in images]
    aucs = {}
    for name in table[0]:
        auc = roc_auc(labels, np.array([row[name] for row in table]))
        aucs[name] = max(auc, 1.0 - auc)
    return aucs


def logistic_cv_auc(
    features: np.ndarray, labels: np.ndarray, folds: int = 5, ridge: float = 1.0, seed: int = 0
) -> float:
    """Out-of-fold AUC of an L2-regularised logistic regression (Newton's method).

    Features are standardised with each training fold's mean and std; every image is
    scored by the model fitted without its fold.
    """
    labels = np.asarray(labels, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(labels))
    scores = np.zeros(len(labels))
    for fold in np.array_split(order, folds):
        train = np.setdiff1d(order, fold)
        mean = features[train].mean(axis=0)
        std = features[train].std(axis=0) + 1e-9
        weights = _fit_logistic((features[train] - mean) / std, labels[train], ridge)
        design = np.hstack([np.ones((len(fold), 1)), (features[fold] - mean) / std])
        scores[fold] = design @ weights
    return roc_auc(labels.astype(int), scores)


def _fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float, steps: int = 25) -> np.ndarray:
    """Weights (intercept first) of a logistic regression with an L2 penalty on the slopes."""
    design = np.hstack([np.ones((len(x), 1)), x])
    weights = np.zeros(design.shape[1])
    penalty = ridge * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ weights)))
        gradient = design.T @ (p - y) + penalty @ weights
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        weights -= np.linalg.solve(hessian + 1e-9 * np.eye(len(weights)), gradient)
    return weights


def global_statistics_report(images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Every statistic's AUC plus ``"logistic (all + histogram)"``, the cross-validated one."""
    report = statistic_aucs(images, labels)
    features = np.array(
        [
            np.concatenate([list(grey_statistics(image).values()), grey_histogram(image)])
            for image in images
        ]
    )
    report["logistic (all + histogram)"] = logistic_cv_auc(features, labels)
    return report
