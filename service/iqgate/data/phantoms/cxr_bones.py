"""Bones of the chest phantom: posterior and anterior ribs, clavicles and the spine.

Each function returns projected bone thickness on the :class:`ChestFrame` grid; the
radiograph adds it to the soft-tissue density.
"""

from __future__ import annotations

import numpy as np

from iqgate.data.phantoms.chest_frame import ChestFrame, band_profile

SIDES = (-1, 1)


def ribs(frame: ChestFrame, rng: np.random.Generator) -> np.ndarray:
    """Ten posterior ribs per side (bright, cortical edges) and fainter anterior ribs.

    Posterior ribs leave the spine nearly horizontally and bend down laterally;
    anterior ribs run from the lateral wall down towards the midline.
    """
    bone = np.zeros(frame.shape, dtype=np.float32)
    spacing = rng.uniform(0.088, 0.102)
    bend = rng.uniform(0.28, 0.42)
    for side in SIDES:
        first = rng.uniform(-0.06, -0.02)
        for k in range(10):
            top = first + k * spacing + rng.normal(0.0, 0.004)
            curve = np.array([bend, -0.2 * bend - 0.05, 0.01 * bend + 0.005 + top])
            reach = rng.uniform(0.92, 1.0) - 0.012 * max(k - 6, 0)
            half = 0.017 + 0.0012 * k
            bone += band_profile(frame, side, (0.1, reach), curve, half, hollow=0.7)
            if k < 7:
                front = top + 0.22 + rng.normal(0.0, 0.01)
                anterior = np.array([0.0, -0.30, front + 0.30])
                bone += 0.35 * band_profile(
                    frame, side, (0.28, reach - 0.04), anterior, half * 1.3, hollow=0.5
                )
    return bone


def clavicles(frame: ChestFrame, rng: np.random.Generator) -> np.ndarray:
    """Two clavicles rising from the sternal notch towards the shoulders."""
    bone = np.zeros(frame.shape, dtype=np.float32)
    medial_y = rng.uniform(-0.06, 0.0)
    rise = rng.uniform(0.10, 0.20)
    for side in SIDES:
        curve = np.array([-0.25, 0.28, -rise - 0.12, medial_y + 0.01])
        bone += band_profile(frame, side, (0.06, rng.uniform(0.75, 0.9)), curve, 0.024, hollow=0.6)
    return 1.3 * bone


def spine(frame: ChestFrame, rng: np.random.Generator) -> np.ndarray:
    """The thoracic spine: vertebral bodies with disc spaces and paired pedicles."""
    half_width = rng.uniform(0.085, 0.10)
    period = rng.uniform(0.095, 0.11)
    phase = rng.uniform(0.0, period)
    across = frame.x / half_width
    column = np.sqrt(np.clip(1.0 - across**2, 0.0, None))
    position = np.mod(frame.y - phase, period) / period
    bodies = 0.75 + 0.25 * np.tanh(6.0 * np.cos(2.0 * np.pi * position) + 4.0)
    pedicles = np.clip(
        1.0 - ((np.abs(across) - 0.62) / 0.2) ** 2 - ((position - 0.45) / 0.2) ** 2, 0.0, None
    )
    visible = np.clip((frame.y + 0.4) / 0.2, 0.0, 1.0)
    return ((column * bodies + 0.8 * np.sqrt(pedicles)) * visible).astype(np.float32)
