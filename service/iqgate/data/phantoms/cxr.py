"""The chest radiograph phantom: a synthetic stand-in for an Object-CXR image."""

from __future__ import annotations

import numpy as np

from iqgate.data.phantoms.cxr_anatomy import render_chest_anatomy
from iqgate.data.phantoms.cxr_structures import draw_dense_structures
from iqgate.data.phantoms.sample import MAX_INTENSITY, Sample, SampleStreams, Task

NATIVE_SIDE_RANGE = (1024, 2048)
"""Inclusive range of the native height and width in pixels."""


def render_cxr(seed: int, index: int, label: int) -> Sample:
    """Chest radiograph ``index`` of ``seed``, with 1 to 3 foreign objects when ``label`` is 1.

    Parameters
    ----------
    seed, index : int
        Select the random streams (:class:`SampleStreams`).
    label : int
        1 draws foreign objects, 0 draws decoys in their place (the negative twin);
        anatomy, the other decoys and noise do not depend on it.

    Returns
    -------
    Sample
        A non-square 12-bit radiograph of 1024 to 2048 pixels a side.
    """
    streams = SampleStreams.for_sample(Task.CXR, seed, index)
    height, width = _native_size(streams.anatomy)
    pixel_spacing_mm = round(streams.anatomy.uniform(350.0, 430.0) / width, 4)
    grey = render_chest_anatomy(streams.anatomy, height, width)
    object_mask = np.zeros(grey.shape, dtype=bool)
    drawn = draw_dense_structures(grey, object_mask, streams.objects, label)
    noise_level = streams.noise.uniform(0.004, 0.010)
    noise = streams.noise.standard_normal(grey.shape, dtype=np.float32)
    grey += noise_level * np.sqrt(grey) * noise
    image = np.rint(np.clip(grey, 0.0, 1.0) * MAX_INTENSITY).astype(np.uint16)
    return Sample(
        task=Task.CXR,
        seed=seed,
        index=index,
        image=image,
        label=label,
        boxes=[obj.box for obj in drawn],
        shapes=[obj.shape for obj in drawn],
        kinds=[obj.kind for obj in drawn],
        object_mask=object_mask,
        pixel_spacing_mm=pixel_spacing_mm,
    )


def _native_size(rng: np.random.Generator) -> tuple[int, int]:
    """A portrait or landscape, never square, ``(height, width)`` in the native range."""
    low, high = NATIVE_SIDE_RANGE
    width = int(rng.integers(low, high + 1))
    height = int(np.clip(round(width * rng.uniform(0.8, 1.25)), low, high))
    if height == width:
        height += 8 if height + 8 <= high else -8
    return height, width
