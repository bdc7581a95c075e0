"""Dense structures on the chest phantom: foreign objects and their decoys, from one generator.

Every radiograph, whatever its label, carries 4 to 9 dense structures. Their position,
size and contrast over the local background come from one generator, and a positive
differs from its negative twin (the same ``(seed, index)`` rendered with label 0) only
in what 1 to 3 of them are: foreign objects (rims, holes, corners, wires) where the twin
has smooth solid decoys (granulomas, bone islands, costal cartilage). So no statistic
that does not depend on the class (count, position, size, grey level, local contrast)
tells the classes apart; only shape and topology do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iqgate.data.phantoms.cxr_decoys import stamp_decoy
from iqgate.data.phantoms.cxr_objects import stamp_foreign_object
from iqgate.data.phantoms.cxr_stamp import Placement
from iqgate.data.phantoms.shapes import Box, mask_bounding_box, object_cxr_shape

STRUCTURE_COUNT_RANGE = (4, 9)
"""Inclusive range of the number of dense structures on a radiograph of either class."""

FOREIGN_COUNT_PROBABILITIES = (0.6, 0.3, 0.1)
"""Probability of 1, 2, 3 structures being foreign objects on a positive (decoys on its twin)."""

CONTRAST_RANGE = (0.08, 0.2)
"""Grey added over the local background, as a fraction of full scale."""

MODEL_INPUT_SIDE = 256
SMALLEST_AT_INPUT_PX = 10.0
"""The smallest structure spans this many pixels at a 256-pixel model input, so that a
hole or a corner is still resolved there."""
LARGEST_FRACTION = 0.1
"""The largest structure spans this fraction of the image's long side."""


@dataclass(frozen=True)
class DrawnObject:
    """A foreign object as drawn: its form (e.g. ``clip-bar``), tight box and Object-CXR
    shape string."""

    kind: str
    box: Box
    shape: str


def draw_dense_structures(
    grey: np.ndarray, object_mask: np.ndarray, rng: np.random.Generator, label: int
) -> list[DrawnObject]:
    """Add the dense structures to ``grey`` in place; foreign ones only when ``label`` is 1.

    Parameters
    ----------
    grey : numpy.ndarray
        Float radiograph in [0, 1] at native size, changed in place.
    object_mask : numpy.ndarray
        Boolean mask of the same shape, set in place where foreign objects are drawn.
    rng : numpy.random.Generator
        The sample's object stream; it is consumed identically for either label.
    label : int
        1 draws the foreign slots as foreign objects, 0 as decoys.

    Returns
    -------
    list of DrawnObject
        The foreign objects in drawing order (empty for a negative).
    """
    low, high = STRUCTURE_COUNT_RANGE
    count = int(rng.integers(low, high + 1))
    foreign = 1 + int(rng.choice(len(FOREIGN_COUNT_PROBABILITIES), p=FOREIGN_COUNT_PROBABILITIES))
    placements = [_placement(rng, grey.shape) for _ in range(count)]
    slots = rng.spawn(count)
    drawn = []
    for index, (placement, slot) in enumerate(zip(placements, slots, strict=True)):
        is_object = bool(label) and index < foreign
        stamp = (
            stamp_foreign_object(slot, placement, grey.shape)
            if is_object
            else stamp_decoy(slot, placement, grey.shape)
        )
        region = grey[stamp.window.region]
        region += np.where(stamp.mask, placement.contrast * stamp.pattern, 0.0).astype(grey.dtype)
        if not is_object:
            continue
        object_mask[stamp.window.region] |= stamp.mask
        box = mask_bounding_box(stamp.mask, stamp.window)
        if box is None:
            raise RuntimeError(f"a {stamp.kind} of size {placement.size:.1f} px drew no pixel")
        drawn.append(
            DrawnObject(
                stamp.kind,
                box,
                object_cxr_shape(stamp.shape_type, box, stamp.vertices),
            )
        )
    np.clip(grey, 0.0, 1.0, out=grey)
    return drawn


def _placement(rng: np.random.Generator, image_shape: tuple[int, int]) -> Placement:
    """Where a structure goes, how large and how dense it is (the same for both kinds)."""
    height, width = image_shape
    long_side = max(height, width)
    smallest = SMALLEST_AT_INPUT_PX * long_side / MODEL_INPUT_SIDE
    largest = LARGEST_FRACTION * long_side
    return Placement(
        centre=(rng.uniform(0.1, 0.9) * width, rng.uniform(0.08, 0.92) * height),
        size=float(np.exp(rng.uniform(np.log(smallest), np.log(largest)))),
        contrast=float(rng.uniform(*CONTRAST_RANGE)),
    )
