"""The anatomy of the chest phantom: a PA radiograph without foreign objects.

Densities (projected attenuation, arbitrary units) of soft tissue, lungs, heart,
mediastinum, abdomen, bones and vessels are summed on a :class:`ChestFrame` grid,
blurred, tone-mapped with a random exposure and contrast, and upsampled to the native
size. Display convention: high = bright. Dense structures (foreign objects and their
decoys) are added by :mod:`iqgate.data.phantoms.cxr_structures`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from iqgate.data.phantoms.chest_frame import ChestFrame, ellipse_profile
from iqgate.data.phantoms.cxr_bones import SIDES, clavicles, ribs, spine

ANATOMY_CEILING = 0.76
"""Brightest grey (as a fraction of full scale) of the tone-mapped anatomy."""


def render_chest_anatomy(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A chest radiograph without foreign objects, float32 ``height x width`` in [0, 1].

    Parameters
    ----------
    rng : numpy.random.Generator
        The sample's anatomy stream.
    height, width : int
        Native image size in pixels.

    Returns
    -------
    numpy.ndarray
        Grey values, high = bright.
    """
    frame = ChestFrame.sample(rng, height, width)
    soft = _soft_tissue_density(frame, rng)
    bone = 0.20 * ribs(frame, rng) + 0.22 * clavicles(frame, rng) + 0.20 * spine(frame, rng)
    density = ndimage.gaussian_filter(soft, 1.6) + ndimage.gaussian_filter(bone, 0.5)
    grey = _tone_map(density, rng)
    return ndimage.zoom(grey, (height / grey.shape[0], width / grey.shape[1]), order=1)


def _soft_tissue_density(frame: ChestFrame, rng: np.random.Generator) -> np.ndarray:
    """Body outline, lungs, heart, mediastinum, abdomen, vessels and texture."""
    half = frame.thorax_half_width
    knots_y = np.array([-2.0, -0.30, -0.10, 0.06, 0.5, 1.0, 1.5, 3.0])
    knots_half = np.array([0.40, 0.40, 1.12, 1.30, 1.24, 1.17, 1.10, 1.06]) * half
    knots_half[2:] *= rng.uniform(0.95, 1.08)
    body_half = np.interp(frame.y, knots_y, knots_half).astype(np.float32)
    body = np.sqrt(np.clip(1.0 - (frame.x / body_half) ** 2, 0.0, None))

    heart_scale = rng.uniform(0.85, 1.15)
    heart_centre = (rng.uniform(0.08, 0.16) * half, rng.uniform(0.82, 0.9))
    heart = ellipse_profile(
        frame, heart_centre, (0.5 * half * heart_scale, 0.25 * heart_scale), rng.uniform(-22, -8)
    )
    mediastinum_half = np.interp(frame.y, [-0.3, 0.2, 0.55, 1.0], [0.15, 0.17, 0.22, 0.2]) * half
    mediastinum = np.sqrt(np.clip(1.0 - ((frame.x - 0.02) / mediastinum_half) ** 2, 0.0, None))
    mediastinum *= np.clip((1.05 - frame.y) / 0.1, 0.0, 1.0)
    aortic_knob = ellipse_profile(frame, (0.17 * half + 0.02, rng.uniform(0.22, 0.3)), (0.07, 0.06))

    lungs, below_domes = _lungs(frame, rng)
    lungs *= np.clip(1.0 - 1.6 * (heart + 0.8 * mediastinum + aortic_knob), 0.0, 1.0)
    texture = ndimage.gaussian_filter(rng.standard_normal(frame.shape).astype(np.float32), 1.2)

    density = (
        1.0 * body
        - 0.62 * lungs * (1.0 + 0.12 * texture)
        + 0.30 * heart * (1.0 - below_domes)
        + 0.25 * mediastinum
        + 0.20 * aortic_knob
        + 0.22 * below_domes * body
        + 0.10 * _vessels(frame, rng) * np.clip(lungs * 3.0, 0.0, 1.0)
    )
    if rng.random() < 0.5:
        breasts = sum(
            ellipse_profile(frame, (side * 0.62 * half, rng.uniform(0.85, 1.0)), (0.3, 0.22))
            for side in SIDES
        )
        density += 0.12 * breasts
    return density.astype(np.float32)


def _lungs(frame: ChestFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Air path length through both lungs, and the region below the diaphragm domes."""
    air = np.zeros(frame.shape, dtype=np.float32)
    below = np.ones(frame.shape, dtype=np.float32)
    right_dome = rng.uniform(0.88, 0.96)
    for side in SIDES:
        lateral = frame.lateral(side)
        dome_top = right_dome + (rng.uniform(0.02, 0.06) if side > 0 else 0.0)
        dome = (
            dome_top
            + 0.12 * ((lateral - 0.45) / 0.45) ** 2
            + 0.14 * np.clip((lateral - 0.72) / 0.24, 0.0, None) ** 2
        )
        across = (lateral - 0.53) / 0.43
        down = (frame.y - 0.52) / 0.54
        shape = np.abs(across) ** 2.4 + np.where(down < 0, down**2, 0.0)
        inside = np.clip(1.0 - shape, 0.0, None) * np.clip((dome - frame.y) / 0.02, 0.0, 1.0)
        air += np.sqrt(inside) * (lateral > 0)
        under_dome = np.clip((frame.y - dome) / 0.05 + 0.5, 0.0, 1.0)
        below = np.minimum(below, np.where(lateral > 0, under_dome, 1.0))
    return air, below


def _vessels(frame: ChestFrame, rng: np.random.Generator) -> np.ndarray:
    """Pulmonary vessels branching out from both hila, thinning towards the periphery."""
    vessels = np.zeros(frame.shape, dtype=np.float32)
    half = frame.thorax_half_width
    for side in SIDES:
        hilum = np.array([side * 0.28 * half, rng.uniform(0.42, 0.5)])
        for _ in range(12):
            angle = rng.uniform(-np.pi * 0.45, np.pi * 0.6)
            direction = np.array([side * np.cos(angle), np.sin(angle)])
            start = hilum + rng.uniform(0.03, 0.08) * direction
            end = start + rng.uniform(0.2, 0.4) * direction
            vessels = np.maximum(
                vessels, _segment_profile(frame, start, end, rng.uniform(0.007, 0.012))
            )
    return vessels


def _segment_profile(
    frame: ChestFrame, start: np.ndarray, end: np.ndarray, radius: float
) -> np.ndarray:
    """A tube from ``start`` to ``end`` that thins to a third of ``radius`` at its end."""
    step = end - start
    along = ((frame.x - start[0]) * step[0] + (frame.y - start[1]) * step[1]) / (step @ step)
    along = np.clip(along, 0.0, 1.0)
    distance = np.hypot(frame.x - start[0] - along * step[0], frame.y - start[1] - along * step[1])
    local_radius = radius * (1.0 - 0.66 * along)
    return np.sqrt(np.clip(1.0 - (distance / local_radius) ** 2, 0.0, None)).astype(np.float32)


def _tone_map(density: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure and contrast processing from density to display grey in [0, 1]."""
    floor = rng.uniform(0.01, 0.06)
    ceiling = rng.uniform(0.64, ANATOMY_CEILING)
    gain = rng.uniform(0.8, 1.4)
    reference = rng.uniform(1.5, 1.9)
    gamma = rng.uniform(0.85, 1.2)
    response = np.tanh(gain * np.clip(density, 0.0, None)) / np.tanh(gain * reference)
    grey = floor + (ceiling - floor) * np.clip(response, 0.0, 1.0) ** gamma
    return grey.astype(np.float32)
