"""Data set specifications on the command line: phantoms, Object-CXR, DICOM manifests.

``phantoms-cxr`` / ``phantoms-cmr`` (synthetic; training, validation and test sets from
distinct seeds), ``object-cxr:PATH`` (official layout; validation is a seeded tenth of
``train``, test is ``dev``), ``manifest:PATH`` (a CSV of DICOM files; seeded 80/10/10).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset, Subset

from iqgate.data.manifest import ManifestDataset
from iqgate.data.object_cxr import ImageItem, ObjectCxrDataset
from iqgate.data.phantom_dataset import PhantomDataset
from iqgate.data.transforms import ImageTransform
from iqgate.data.twin_pairs import TwinPairDataset

PHANTOM_TASKS = {"phantoms-cxr": "cxr", "phantoms-cmr": "cmr"}
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1_000_003, "test": 2_000_029}
"""Phantom seeds of the three splits are ``seed + offset``: no sample is shared."""


@dataclass
class DataSplits:
    """Training (augmented), validation and test sets of one data source."""

    spec: str
    train: Dataset[ImageItem]
    val: Dataset[ImageItem]
    test: Dataset[ImageItem]
    description: str
    twins: Dataset[ImageItem] | None = None
    """The negative twin of every test image (phantoms only: same image, no target)."""


@dataclass(frozen=True)
class PhantomSizes:
    """How many phantoms each split holds."""

    train: int = 1000
    val: int = 200
    test: int = 400


def _split_indices(n: int, seed: int, fractions: tuple[float, ...]) -> list[list[int]]:
    order = np.random.default_rng(seed).permutation(n).tolist()
    cuts = np.cumsum([round(f * n) for f in fractions[:-1]]).tolist()
    bounds = [0, *cuts, n]
    return [sorted(order[a:b]) for a, b in pairwise(bounds)]


def open_data(
    spec: str,
    size: int,
    *,
    seed: int = 0,
    phantom_sizes: PhantomSizes = PhantomSizes(),
    augment: ImageTransform | None = None,
    processes: int = 0,
    progress: bool = False,
    cache_dir: Path | None = None,
    twin_pairs: bool = False,
) -> DataSplits:
    """Open the data set named by ``spec`` at input ``size``; ``augment`` goes to train only.

    ``cache_dir`` keeps rendered phantoms between runs. ``twin_pairs`` (phantoms only)
    makes the training split ``phantom_sizes.train // 2`` phantoms, each with and without
    its target (:class:`~iqgate.data.twin_pairs.TwinPairDataset`); validation and test
    stay independent phantoms.
    """
    kind, _, location = spec.partition(":")
    if twin_pairs and spec not in PHANTOM_TASKS:
        raise ValueError(f"twin pairs exist for phantoms only, not for {spec!r}")
    if spec in PHANTOM_TASKS:
        task = PHANTOM_TASKS[spec]
        train_seed = seed + SPLIT_SEED_OFFSETS["train"]
        splits: dict[str, PhantomDataset | TwinPairDataset] = {
            name: PhantomDataset(
                task, getattr(phantom_sizes, name), size=size, seed=seed + SPLIT_SEED_OFFSETS[name]
            )
            for name in ("val", "test")
        }
        splits["train"] = (
            TwinPairDataset(task, phantom_sizes.train // 2, seed=train_seed, size=size)
            if twin_pairs
            else PhantomDataset(task, phantom_sizes.train, size=size, seed=train_seed)
        )
        for dataset in splits.values():
            dataset.materialise(processes, progress, cache_dir)
        return DataSplits(
            spec,
            splits["train"].with_transform(augment),
            splits["val"],
            splits["test"],
            f"synthetic {task} phantoms (iqgate.data.phantoms), seeds {seed} + "
            f"{SPLIT_SEED_OFFSETS}, sizes {phantom_sizes}"
            + (", training phantoms in twin pairs (with and without target)" if twin_pairs else ""),
            twins=PhantomDataset(
                task,
                phantom_sizes.test,
                size=size,
                seed=seed + SPLIT_SEED_OFFSETS["test"],
                positive_fraction=0.0,
            ),
        )
    if kind == "object-cxr" and location:
        root = Path(location)
        plain = ObjectCxrDataset(root, "train", size)
        train_idx, val_idx = _split_indices(len(plain), seed, (0.9, 0.1))
        return DataSplits(
            spec,
            Subset(ObjectCxrDataset(root, "train", size, transform=augment), train_idx),
            Subset(plain, val_idx),
            ObjectCxrDataset(root, "dev", size),
            f"Object-CXR at {root}: train minus a seeded tenth (validation), dev as test",
        )
    if kind == "manifest" and location:
        plain_manifest = ManifestDataset(location, size)
        parts = _split_indices(len(plain_manifest), seed, (0.8, 0.1, 0.1))
        augmented = ManifestDataset(location, size, transform=augment)
        return DataSplits(
            spec,
            Subset(augmented, parts[0]),
            Subset(plain_manifest, parts[1]),
            Subset(plain_manifest, parts[2]),
            f"DICOM manifest {location}: seeded 80/10/10 split",
        )
    raise ValueError(
        f"unknown data {spec!r}: use phantoms-cxr, phantoms-cmr, object-cxr:PATH or manifest:PATH"
    )
