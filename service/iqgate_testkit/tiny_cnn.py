"""A small hand-checkable ReLU network and reproducible random images for saliency tests."""

from __future__ import annotations

import torch
from torch import nn


class TinyCnn(nn.Module):
    """A small ReLU network with named blocks, for hand-checked saliency tests."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.act1 = nn.ReLU(inplace=inplace)
        self.block = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.act2 = nn.ReLU(inplace=inplace)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.stem(x))
        x = self.act2(self.block(x))
        return self.head(x.mean(dim=(2, 3)))


def images(batch: int = 2, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    """Reproducible random images [B, 3, H, W]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, height, width, generator=generator)
