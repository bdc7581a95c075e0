"""From a trained model to a model package: threshold, metrics and the card."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from iqgate.data.phantom_dataset import PhantomDataset
from iqgate.packages import ModelCard, SplitMetrics
from iqgate.routing_rules import CARDIAC_FOUR_CHAMBER_MR, CHEST_RADIOGRAPHS, Routing
from iqgate.study.kind_rates import flag_rates_by_kind
from iqgate.study.metrics import roc_auc, scores_at, sensitivity_threshold, youden_threshold
from iqgate.study.train import predict_probabilities


@dataclass(frozen=True)
class TaskProfile:
    """What a task's packages say about classes and routing."""

    task: str
    classes: tuple[str, str]
    routing: Routing


TASKS: dict[str, TaskProfile] = {
    "cxr": TaskProfile(
        "cxr-foreign-object",
        ("no foreign object", "foreign object"),
        CHEST_RADIOGRAPHS,
    ),
    "cmr": TaskProfile("cmr-lvot", ("no LVOT", "LVOT visible"), CARDIAC_FOUR_CHAMBER_MR),
}


def choose_threshold(
    labels: np.ndarray, probabilities: np.ndarray, target_sensitivity: float | None = None
) -> tuple[float, str]:
    """The decision threshold on validation scores and the rule that chose it."""
    if target_sensitivity is not None:
        threshold = sensitivity_threshold(labels, probabilities, target_sensitivity)
        return threshold, f"highest threshold with validation sensitivity >= {target_sensitivity}"
    return youden_threshold(labels, probabilities), "Youden's J on the validation set"


def split_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    object_kinds: Sequence[Sequence[str]] | None = None,
) -> SplitMetrics:
    """Accuracy, sensitivity and specificity at ``threshold``, and AUC; a score a split
    cannot have (AUC, sensitivity or specificity with one class) is None. With
    ``object_kinds`` (each image's object kinds), sensitivity by kind as well."""
    at = scores_at(labels, probabilities, threshold)
    by_kind = None
    if object_kinds is not None:
        by_kind = flag_rates_by_kind(object_kinds, list(probabilities >= threshold))
    return SplitMetrics(
        images=int(labels.size),
        accuracy=round(at.accuracy, 4),
        auc=_rounded(roc_auc(labels, probabilities)),
        sensitivity=_rounded(at.sensitivity),
        specificity=_rounded(at.specificity),
        by_kind=by_kind,
    )


def _object_kinds(split: Dataset) -> list[list[str]] | None:
    """What the objects of each image are, where the split knows (phantoms)."""
    return split.object_kinds() if isinstance(split, PhantomDataset) else None


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def evaluate_for_card(
    model: nn.Module,
    val: Dataset,
    test: Dataset,
    device: torch.device,
    *,
    target_sensitivity: float | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[float, str, dict[str, SplitMetrics]]:
    """Threshold chosen on ``val``; metrics on ``val`` and ``test`` at that threshold,
    split by object kind where the splits are phantoms."""
    val_labels, val_probabilities = predict_probabilities(
        model, val, device=device, batch_size=batch_size, progress=progress
    )
    threshold, rule = choose_threshold(val_labels, val_probabilities, target_sensitivity)
    test_labels, test_probabilities = predict_probabilities(
        model, test, device=device, batch_size=batch_size, progress=progress
    )
    metrics = {
        "validation": split_metrics(val_labels, val_probabilities, threshold, _object_kinds(val)),
        "test": split_metrics(test_labels, test_probabilities, threshold, _object_kinds(test)),
    }
    return threshold, rule, metrics


def build_card(
    *,
    name: str,
    version: str,
    task: str,
    architecture: str,
    input_size: int,
    threshold: float,
    rule: str,
    metrics: dict[str, SplitMetrics],
    training: dict[str, object],
    synthetic: bool,
) -> ModelCard:
    """The card of a freshly trained model."""
    profile = TASKS[task]
    if synthetic:
        description = (
            f"DEMO model for {profile.task}, trained on synthetic phantoms only "
            "(iqgate.data.phantoms). It makes the node work out of the box."
        )
        intended_use = (
            "Demonstration and testing of iqgate only. NOT FOR CLINICAL USE: it has never "
            "seen a real image. Train a real model with tools/train.py on your own data."
        )
    else:
        description = f"{architecture} classifier for {profile.task}"
        intended_use = "Research use; validate on local data before any clinical use."
    return ModelCard(
        name=name,
        version=version,
        task=profile.task,
        description=description,
        intended_use=intended_use,
        architecture=architecture,
        input_size=input_size,
        classes=list(profile.classes),
        decision_threshold=float(threshold),
        threshold_rule=rule,
        routing=profile.routing,
        training=training,
        metrics=metrics,
    )
