"""Anatomical decoys on the chest phantom: smooth solid blobs on positives and negatives alike.

Calcified granulomas and nipple shadows (round), bone islands (oval) and calcified
costal cartilage (elongated) share their placement (position, size, contrast) with the
foreign objects; unlike them they have a smooth convex outline without holes, rims or
corners, and a gently domed density.
"""

from __future__ import annotations

import numpy as np

from iqgate.data.phantoms.cxr_stamp import ImageShape, Placement, Stamp
from iqgate.data.phantoms.shapes import ShapeType, Window

ELONGATION_RANGE = (1.0, 3.0)
"""Ratio of a decoy's long axis to its short axis."""


def stamp_decoy(rng: np.random.Generator, placement: Placement, image_shape: ImageShape) -> Stamp:
    """A smooth solid blob (rotated ellipse) whose long axis is ``placement.size``."""
    elongation = 1.0 if rng.random() < 0.4 else rng.uniform(*ELONGATION_RANGE)
    angle = rng.uniform(0.0, np.pi)
    semi_long = placement.size / 2
    semi_short = semi_long / elongation
    centre_x, centre_y = placement.centre
    window = Window.around(
        (
            int(centre_x - semi_long) - 1,
            int(centre_y - semi_long) - 1,
            int(centre_x + semi_long) + 1,
            int(centre_y + semi_long) + 1,
        ),
        image_shape,
    )
    ys, xs = window.grid()
    along = (np.cos(angle) * (xs - centre_x) + np.sin(angle) * (ys - centre_y)) / semi_long
    across = (-np.sin(angle) * (xs - centre_x) + np.cos(angle) * (ys - centre_y)) / semi_short
    radius_sq = along**2 + across**2
    mask = radius_sq <= 1.0
    pattern = 0.75 + 0.25 * np.sqrt(np.clip(1.0 - radius_sq, 0.0, None))
    kind = "granuloma" if elongation == 1.0 else "bone-island" if elongation < 2 else "cartilage"
    return Stamp(kind, ShapeType.ELLIPSE, window, mask, pattern)
