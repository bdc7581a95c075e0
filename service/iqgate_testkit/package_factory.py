"""Tiny random model packages for node tests (small resnet18, a fixed threshold)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from iqgate import nets
from iqgate.packages import ModelCard, Routing, save_package


def tiny_package(
    folder: Path,
    name: str = "tiny",
    *,
    modalities: Sequence[str] = ("DX",),
    threshold: float = 0.0,
    seed: int = 0,
    input_size: int = 64,
) -> Path:
    """Write a random resnet18 package routed to ``modalities``; returns its folder."""
    torch.manual_seed(seed)
    card = ModelCard(
        name=name,
        version="0.0.1",
        task=f"{name} test",
        description="tiny random test model",
        intended_use="tests only; not for clinical use",
        architecture="resnet18",
        input_size=input_size,
        classes=["no foreign object", "foreign object"],
        decision_threshold=threshold,
        threshold_rule="fixed for tests",
        routing=Routing(modalities=list(modalities)),
    )
    save_package(folder / name, nets.build("resnet18"), card)
    return folder / name
