"""Which model package applies to an image, by the routing rules in its card."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from pydicom.dataset import Dataset
from torch import nn

from iqgate.packages import ModelCard, Routing, find_packages, load_package


def routing_mismatch(routing: Routing, ds: Dataset) -> str | None:
    """Why ``routing`` does not apply to ``ds`` (None when it does)."""
    checks = (
        ("Modality", routing.modalities),
        ("BodyPartExamined", routing.body_parts),
        ("PhotometricInterpretation", routing.photometric_interpretations),
        ("SOPClassUID", routing.sop_class_uids),
    )
    for keyword, allowed in checks:
        value = str(ds.get(keyword, "") or "").strip().upper()
        if allowed and value not in {a.upper() for a in allowed}:
            return f"{keyword} {value or '(empty)'} not in {list(allowed)}"
    if routing.series_description_patterns:
        description = str(ds.get("SeriesDescription", "") or "")
        if not any(
            re.search(p, description, re.IGNORECASE) for p in routing.series_description_patterns
        ):
            return "SeriesDescription matches no pattern"
    return None


@dataclass
class LoadedModel:
    """A model package ready for inference."""

    card: ModelCard
    model: nn.Module
    directory: Path


class ModelRegistry:
    """Every model package of a folder, loaded once on one device."""

    def __init__(self, models: Sequence[LoadedModel], device: torch.device) -> None:
        self.models = list(models)
        self.device = device

    @classmethod
    def from_directory(cls, models_dir: str | Path, device: torch.device) -> ModelRegistry:
        """Load every package under ``models_dir`` (checksums verified)."""
        loaded = []
        for directory in find_packages(models_dir):
            model, card = load_package(directory, device)
            loaded.append(LoadedModel(card, model, directory))
        return cls(loaded, device)

    def route(self, ds: Dataset) -> tuple[LoadedModel | None, str]:
        """The first package whose rules apply to ``ds``, or None with the reasons."""
        reasons = []
        for loaded in self.models:
            mismatch = routing_mismatch(loaded.card.routing, ds)
            if mismatch is None:
                return loaded, ""
            reasons.append(f"{loaded.card.name}: {mismatch}")
        return None, "; ".join(reasons) or "no model packages loaded"
