"""Blood-filled tubes of the cardiac MR phantom: the LV outflow tract and its decoys.

Every frame, whatever its label, shows 4 to 7 tubes of flowing blood cut obliquely by
the imaging plane (pulmonary veins, superior and inferior vena cava, coronary sinus,
descending aorta). Radius, length and grey level come from one generator for all of
them, and the grey level is the partial-volume one of a vessel cut obliquely (0.7 to
0.8 of the blood pool), so no tube is ever the brightest structure. On a positive one
of them is the outflow tract instead: the tube that leaves the left ventricle's cavity
and ends in the aortic-root bulb. Only that context and that end make the target.
Coordinates are those of the heart frame (:mod:`iqgate.data.phantoms.cmr`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from iqgate.data.phantoms.cmr_painter import Frame, paint_over

TUBE_COUNT_RANGE = (4, 7)
"""Inclusive range of the number of tubes on a frame of either class."""

PARTIAL_VOLUME_RANGE = (0.7, 0.8)
"""Grey level of a tube, as a fraction of the blood pool's signal."""

RADIUS_RANGE = (0.045, 0.065)
LENGTH_RANGE = (0.18, 0.34)
"""A tube's radius and length, in heart lengths."""

ROOT_BULB = 1.4
"""The aortic root's radius over the outflow tract's."""


class Tube(NamedTuple):
    """A tube from ``start`` to ``end`` (heart frame) of ``radius`` at grey ``level``."""

    start: tuple[float, float]
    end: tuple[float, float]
    radius: float
    level: float


def draw_tube_count(rng: np.random.Generator) -> int:
    """How many tubes a frame shows."""
    return int(rng.integers(TUBE_COUNT_RANGE[0], TUBE_COUNT_RANGE[1] + 1))


def decoy_tube(rng: np.random.Generator) -> Tube:
    """A vessel near the heart's border: it starts on a ring around the heart, any direction."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    distance = rng.uniform(0.5, 1.1)
    start = (0.02 + 0.8 * distance * np.cos(angle), -0.18 + distance * np.sin(angle))
    heading = rng.uniform(0.0, 2.0 * np.pi)
    length = rng.uniform(*LENGTH_RANGE)
    end = (start[0] + length * np.cos(heading), start[1] + length * np.sin(heading))
    return Tube(start, end, rng.uniform(*RADIUS_RANGE), rng.uniform(*PARTIAL_VOLUME_RANGE))


def outflow_tract(rng: np.random.Generator) -> Tube:
    """The LVOT: from inside the LV base towards the aortic root between the atria."""
    start = (rng.uniform(0.08, 0.14), rng.uniform(-0.2, -0.12))
    heading = np.arctan2(rng.uniform(0.12, 0.2) - start[1], rng.uniform(-0.04, 0.04) - start[0])
    length = rng.uniform(*LENGTH_RANGE)
    end = (start[0] + length * np.cos(heading), start[1] + length * np.sin(heading))
    return Tube(start, end, rng.uniform(*RADIUS_RANGE), rng.uniform(*PARTIAL_VOLUME_RANGE))


def paint_tube(signal: np.ndarray, heart: Frame, tube: Tube, *, bulb: bool) -> np.ndarray:
    """Draw ``tube`` (and the aortic-root bulb at its end) where it is brighter than the
    tissue; returns the pixels it changed."""
    changed = paint_over(signal, heart.capsule_alpha(tube.start, tube.end, tube.radius), tube.level)
    if bulb:
        root = (tube.radius * ROOT_BULB, tube.radius * ROOT_BULB)
        changed |= paint_over(signal, heart.ellipse_alpha(tube.end, root), tube.level)
    return changed
