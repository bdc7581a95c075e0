"""Phantoms in twin pairs for training: each radiograph once without and once with its target.

A phantom and its negative twin share everything but the target (``iqgate.data.phantoms``:
the same ``(seed, index)`` rendered with label 0 or 1), so a batch holding both asks the
classifier about the target alone: nothing else in the pair tells the labels apart.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from iqgate.data.object_cxr import ImageItem
from iqgate.data.phantom_dataset import PhantomDataset
from iqgate.data.transforms import ImageTransform


class TwinPairDataset(Dataset[ImageItem]):
    """``pairs`` phantoms, each twice: item ``2k`` is phantom ``k`` without its target
    (label 0), item ``2k + 1`` the same phantom with it (label 1)."""

    def __init__(
        self,
        task: str,
        pairs: int,
        *,
        seed: int,
        size: int,
        transform: ImageTransform | None = None,
    ) -> None:
        self.negatives = PhantomDataset(
            task, pairs, seed=seed, size=size, positive_fraction=0.0, transform=transform
        )
        self.positives = PhantomDataset(
            task, pairs, seed=seed, size=size, positive_fraction=1.0, transform=transform
        )

    def __len__(self) -> int:
        return 2 * len(self.positives)

    def __getitem__(self, index: int) -> ImageItem:
        if not 0 <= index < len(self):
            raise IndexError(f"twin-pair item {index} out of range for {len(self)} items")
        half = self.positives if index % 2 else self.negatives
        return half[index // 2]

    def materialise(
        self, processes: int = 0, progress: bool = False, cache_dir: Path | None = None
    ) -> TwinPairDataset:
        """Render both halves now (see :meth:`PhantomDataset.materialise`)."""
        self.negatives.materialise(processes, progress, cache_dir)
        self.positives.materialise(processes, progress, cache_dir)
        return self

    def with_transform(self, transform: ImageTransform | None) -> TwinPairDataset:
        """The same pairs (sharing the renders) with another transform."""
        twin = copy.copy(self)
        twin.negatives = self.negatives.with_transform(transform)
        twin.positives = self.positives.with_transform(transform)
        return twin


class PairedRandomSampler(Sampler[int]):
    """Items ``2k`` and ``2k + 1`` next to each other, the pairs in random order.

    With an even batch size every batch holds whole pairs. ``generator`` may be
    replaced between epochs, as for :class:`torch.utils.data.RandomSampler`.
    """

    def __init__(self, length: int, generator: torch.Generator | None = None) -> None:
        self.length = length
        self.generator = generator

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        pairs = (self.length + 1) // 2
        for pair in torch.randperm(pairs, generator=self.generator).tolist():
            yield from (i for i in (2 * pair, 2 * pair + 1) if i < self.length)
