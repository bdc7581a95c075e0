"""The cardiac MR phantom: a 4-chamber bSSFP cine-like frame, with or without the LVOT.

A positive (label 1) shows the left ventricular outflow tract: a bright tube of blood
leaving the left ventricle's base between the atria towards the aortic root, as when
the 4-chamber plane is tilted into a "5-chamber" view. The heart is drawn in a frame
``(u, v)`` in units of the heart's length: ``u`` across towards the left ventricle,
``v`` from the atrioventricular plane (0) away from the apex (the apex is at -1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from iqgate.data.phantoms.cmr_painter import Frame, paint
from iqgate.data.phantoms.sample import MAX_INTENSITY, Sample, SampleStreams, Task
from iqgate.data.phantoms.shapes import ShapeType, Window, mask_bounding_box, object_cxr_shape

SIDE_RANGE = (232, 280)
"""Inclusive range of the frame's height and width in pixels."""

BLOOD, MYOCARDIUM, FAT, LUNG, LIVER, MUSCLE, MARROW = 1.0, 0.22, 0.72, 0.04, 0.33, 0.26, 0.5
MEDIASTINUM = 0.4
"""bSSFP signal of each tissue, relative to blood."""


def render_cmr(seed: int, index: int, label: int) -> Sample:
    """Cardiac MR frame ``index`` of ``seed``, showing the LVOT when ``label`` is 1.

    Parameters
    ----------
    seed, index : int
        Select the random streams (:class:`SampleStreams`).
    label : int
        1 draws the LV outflow tract; anatomy, shading and noise do not depend on it.

    Returns
    -------
    Sample
        A 12-bit magnitude frame of about 256 pixels a side; a positive has one box,
        the LVOT's, annotated as a rectangle.
    """
    streams = SampleStreams.for_sample(Task.CMR, seed, index)
    rng = streams.anatomy
    shape = (
        int(rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1)),
        int(rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1)),
    )
    pixel_spacing_mm = round(float(rng.uniform(1.3, 1.6)), 3)
    signal = np.zeros(shape, dtype=np.float64)
    _paint_thorax(signal, rng)
    heart = _heart_frame(shape, rng)
    _paint_heart(signal, heart, rng)
    lvot = _lvot_geometry(streams.objects)
    object_mask = np.zeros(shape, dtype=bool)
    boxes, shapes = [], []
    if label:
        object_mask = _paint_lvot(signal, heart, lvot)
        box = mask_bounding_box(object_mask, Window(0, 0, shape[0] - 1, shape[1] - 1))
        if box is None:
            raise RuntimeError(f"the LVOT of CMR sample {index} (seed {seed}) changed no pixel")
        boxes, shapes = [box], [object_cxr_shape(ShapeType.RECTANGLE, box)]
    image = _acquire(signal, streams.noise)
    return Sample(
        task=Task.CMR,
        seed=seed,
        index=index,
        image=image,
        label=label,
        boxes=boxes,
        shapes=shapes,
        object_mask=object_mask,
        pixel_spacing_mm=pixel_spacing_mm,
    )


def _paint_thorax(signal: np.ndarray, rng: np.random.Generator) -> None:
    """Body with subcutaneous fat, lungs, liver, spine and descending aorta."""
    height, width = signal.shape
    centre = (width * rng.uniform(0.47, 0.53), height * rng.uniform(0.48, 0.54))
    body = Frame(signal.shape, centre, rng.uniform(-0.1, 0.1), min(height, width) / 2)
    half_w, half_h = rng.uniform(0.86, 0.95), rng.uniform(0.72, 0.85)
    paint(signal, body.ellipse_alpha((0.0, 0.0), (half_w, half_h)), FAT)
    fat = rng.uniform(0.03, 0.07)
    paint(signal, body.ellipse_alpha((0.0, 0.0), (half_w - fat, half_h - fat)), MUSCLE)
    for side in (-1, 1):
        paint(signal, body.ellipse_alpha((side * 0.5, -0.08), (0.32, 0.52)), LUNG)
    paint(signal, body.ellipse_alpha((-0.45, 0.55), (0.45, 0.3)), LIVER)
    spine_centre = (rng.uniform(-0.06, 0.06), half_h - rng.uniform(0.18, 0.24))
    paint(signal, body.ellipse_alpha(spine_centre, (0.14, 0.12)), MYOCARDIUM)
    paint(signal, body.ellipse_alpha(spine_centre, (0.11, 0.095)), MARROW)
    aorta = (spine_centre[0] + 0.16, spine_centre[1] - 0.16)
    paint(signal, body.ellipse_alpha(aorta, (0.07, 0.07)), BLOOD * 0.9)


def _heart_frame(shape: tuple[int, int], rng: np.random.Generator) -> Frame:
    """Where the heart is: the crux, the long-axis direction and the heart's length."""
    height, width = shape
    crux = (width * rng.uniform(0.46, 0.56), height * rng.uniform(0.5, 0.58))
    tilt = np.deg2rad(rng.uniform(-40.0, 20.0))
    return Frame(shape, crux, tilt, min(shape) * rng.uniform(0.36, 0.44))


def _paint_heart(signal: np.ndarray, heart: Frame, rng: np.random.Generator) -> None:
    """Pericardial fat, myocardium, the four chambers, papillary muscles and distractors."""
    filling = rng.uniform(0.8, 1.05)
    wall = 0.07 + (1.05 - filling) * 0.1
    lv_centre, lv_axes = (0.2, -0.44), (0.15 * filling, 0.4 * filling)
    rv_centre, rv_axes = (-0.15, -0.36), (0.12 * filling, 0.32 * filling)
    la_centre, la_axes = (0.22, 0.19), (0.14, 0.15)
    ra_centre, ra_axes = (-0.22, 0.2), (0.14, 0.17)
    paint(signal, heart.ellipse_alpha((0.02, -0.18), (0.5, 0.7)), FAT)
    paint(signal, heart.ellipse_alpha((0.02, -0.18), (0.46, 0.66)), MEDIASTINUM)
    for centre, axes, thickness in [
        (lv_centre, lv_axes, wall),
        (rv_centre, rv_axes, 0.03),
        (la_centre, la_axes, 0.03),
        (ra_centre, ra_axes, 0.03),
        ((0.0, 0.05), (0.1, 0.13), 0.0),
    ]:
        paint(
            signal,
            heart.ellipse_alpha(centre, (axes[0] + thickness, axes[1] + thickness)),
            MYOCARDIUM,
        )
    for centre, axes, level in [
        (lv_centre, lv_axes, BLOOD),
        (rv_centre, rv_axes, 0.95 * BLOOD),
        (la_centre, la_axes, 0.97 * BLOOD),
        (ra_centre, ra_axes, 0.95 * BLOOD),
    ]:
        paint(signal, heart.ellipse_alpha(centre, axes), level)
    for offset in (-0.06, 0.08):
        papillary = (lv_centre[0] + offset, lv_centre[1] + rng.uniform(0.05, 0.15))
        paint(signal, heart.ellipse_alpha(papillary, (0.018, 0.045)), MYOCARDIUM)
    if rng.random() < 0.3:
        # Signal dropout of the thin interatrial septum: a bright bridge between the atria.
        paint(signal, heart.capsule_alpha((-0.1, 0.26), (0.1, 0.26), 0.035), 0.96 * BLOOD)
    if rng.random() < 0.4:
        paint(signal, heart.ellipse_alpha((0.3, 0.02), (0.03, 0.03)), 0.9 * BLOOD)


class OutflowTract(NamedTuple):
    """The LVOT in the heart frame: a tube from the LV base to the aortic root."""

    start: tuple[float, float]
    end: tuple[float, float]
    radius: float


def _lvot_geometry(rng: np.random.Generator) -> OutflowTract:
    """Where the outflow tract runs; shorter ones are seen when the plane cuts it early."""
    start = (rng.uniform(0.06, 0.12), rng.uniform(-0.16, -0.1))
    reach = rng.uniform(0.55, 1.0)
    target = (rng.uniform(-0.04, 0.04), rng.uniform(0.12, 0.2))
    end = (start[0] + reach * (target[0] - start[0]), start[1] + reach * (target[1] - start[1]))
    return OutflowTract(start, end, rng.uniform(0.05, 0.07))


def _paint_lvot(signal: np.ndarray, heart: Frame, lvot: OutflowTract) -> np.ndarray:
    """Draw the outflow tract and the aortic root bulb; returns the pixels they changed."""
    changed = paint(signal, heart.capsule_alpha(lvot.start, lvot.end, lvot.radius), BLOOD)
    root = (lvot.radius * 1.35, lvot.radius * 1.35)
    changed |= paint(signal, heart.ellipse_alpha(lvot.end, root), BLOOD)
    return changed


def _acquire(signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coil shading, Rician noise and scaling to 12-bit magnitude values."""
    height, width = signal.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    sensitivity = np.zeros(signal.shape)
    for _ in range(int(rng.integers(2, 5))):
        angle = rng.uniform(0.0, 2.0 * np.pi)
        coil_x = width * (0.5 + 0.55 * np.cos(angle))
        coil_y = height * (0.5 + 0.55 * np.sin(angle))
        spread = rng.uniform(0.35, 0.6) * max(height, width)
        sensitivity += np.exp(-((xs - coil_x) ** 2 + (ys - coil_y) ** 2) / (2.0 * spread**2))
    shading = 0.45 + 0.55 * sensitivity / sensitivity.max()
    noise_level = rng.uniform(0.015, 0.04)
    real = signal * shading + noise_level * rng.standard_normal(signal.shape)
    imaginary = noise_level * rng.standard_normal(signal.shape)
    magnitude = np.hypot(real, imaginary) * rng.uniform(1400.0, 3200.0)
    return np.rint(np.clip(magnitude, 0.0, MAX_INTENSITY)).astype(np.uint16)
