"""The models of the randomisation and repeatability tests (paper section 4.4).

- SR (semi-randomised): the ImageNet backbone with a random two-way head, He
  initialisation; it needs a local ImageNet checkpoint, nothing is downloaded.
- FR (fully randomised): every weight random. torchvision initialises convolutions
  with He (Kaiming normal, fan-out) and batch norms to scale 1 and shift 0, and
  :func:`iqgate.nets.build` gives the head He initialisation, so all learnt weights
  are He-initialised as the paper says.
- Repeated: three models trained from different seeds (see
  :mod:`iqgate.study.experiments`).

Each trial has its own seed, ``base seed + SEED_OFFSETS[condition] + trial - 1``, so
the three conditions never share a random draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn

from iqgate import nets

Condition = Literal["sr", "fr", "repeated"]
CONDITIONS: tuple[Condition, ...] = ("repeated", "sr", "fr")
"""Conditions in the order the benchmark runs them (the trained models first)."""
CONDITION_TITLES: dict[Condition, str] = {"sr": "SR", "fr": "FR", "repeated": "Repeated"}
SEED_OFFSETS: dict[Condition, int] = {"repeated": 0, "sr": 10_000, "fr": 20_000}


def trial_seed(condition: Condition, base_seed: int, trial: int) -> int:
    """The seed of trial ``trial`` (1-based) of ``condition``."""
    if trial < 1:
        raise ValueError(f"trials are numbered from 1, got {trial}")
    return base_seed + SEED_OFFSETS[condition] + trial - 1


def semi_randomised(arch: str, imagenet_weights: str | Path, seed: int) -> nn.Module:
    """SR model: the backbone from ``imagenet_weights`` and a He-initialised head.

    The checkpoint's own head is never kept, even where it has two outputs.
    """
    torch.manual_seed(seed)
    return nets.build(arch, num_classes=2, weights=imagenet_weights, new_head=True)


def fully_randomised(arch: str, seed: int) -> nn.Module:
    """FR model: all weights drawn afresh (He initialisation), no training."""
    torch.manual_seed(seed)
    return nets.build(arch, num_classes=2)
