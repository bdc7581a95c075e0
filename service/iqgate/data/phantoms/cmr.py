"""The cardiac MR phantom: a 4-chamber bSSFP cine-like frame, with or without the LVOT.

A positive (label 1) shows the left ventricular outflow tract: a tube of blood leaving
the left ventricle's cavity between the atria and ending in the aortic root, as when
the 4-chamber plane is tilted into a "5-chamber" view. Every frame also shows several
decoy vessels from the same generator (:mod:`iqgate.data.phantoms.cmr_vessels`), the
field of view is shifted by up to a third of the frame and the heart is rotated, so
neither position nor grey level tells where the target is. The fluid-filled stomach
with its folds, in most frames, is as bright as blood and richer in edges than the
heart, as in real cines that cut the upper abdomen. The heart is drawn in a
frame ``(u, v)`` in units of the heart's length: ``u`` across towards the left
ventricle, ``v`` from the atrioventricular plane (0) away from the apex (at -1).
"""

from __future__ import annotations

import numpy as np

from iqgate.data.phantoms.cmr_painter import Frame, paint
from iqgate.data.phantoms.cmr_vessels import decoy_tube, draw_tube_count, outflow_tract, paint_tube
from iqgate.data.phantoms.sample import MAX_INTENSITY, Sample, SampleStreams, Task
from iqgate.data.phantoms.shapes import ShapeType, Window, mask_bounding_box, object_cxr_shape

LVOT_KIND = "lvot"
"""The kind of the one object a positive frame carries: the LV outflow tract."""

SIDE_RANGE = (232, 280)
"""Inclusive range of the frame's height and width in pixels."""

BLOOD, MYOCARDIUM, FAT, LUNG, LIVER, MUSCLE, MARROW = 1.0, 0.22, 0.72, 0.04, 0.33, 0.26, 0.5
MEDIASTINUM = 0.4
"""bSSFP signal of each tissue, relative to blood."""

FIELD_SHIFT_FRACTION = 0.32
"""The field of view is shifted by up to this fraction of the frame in x and in y."""

BODY_FAT_RANGE = (0.8, 1.05)
"""Signal of subcutaneous fat relative to blood: as bright as blood near a coil in bSSFP."""

CHAMBER_BLOOD_RANGE = (0.9, 1.0)
"""Signal of each chamber's blood pool relative to blood (inflow and coil effects)."""

HEART_TILT_RANGE_DEG = (-70.0, 40.0)
"""Direction of the heart's long axis in the frame."""

STOMACH_PROBABILITY = 0.8
"""Share of frames that cut the fluid-filled stomach below the left hemidiaphragm."""

STOMACH_FLUID_RANGE = (0.95, 1.15)
"""Signal of gastric fluid relative to blood: still fluid is bright in bSSFP."""

RUGAL_FOLD_COUNT_RANGE = (3, 6)
"""Inclusive range of the number of dark mucosal folds across the stomach."""


def render_cmr(seed: int, index: int, label: int) -> Sample:
    """Cardiac MR frame ``index`` of ``seed``, showing the LVOT when ``label`` is 1.

    Parameters
    ----------
    seed, index : int
        Select the random streams (:class:`SampleStreams`).
    label : int
        1 draws the LV outflow tract in the place of the first decoy vessel (label 0 is
        the negative twin); anatomy, the other vessels, shading and noise do not
        depend on it.

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
    shift = rng.uniform(-FIELD_SHIFT_FRACTION, FIELD_SHIFT_FRACTION, 2) * np.array(shape[::-1])
    _paint_thorax(signal, rng, shift)
    heart = _heart_frame(shape, rng, shift)
    _paint_heart(signal, heart, rng)
    object_mask = _paint_vessels(signal, heart, streams.objects, label)
    boxes, shapes = [], []
    if label:
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
        kinds=[LVOT_KIND] * len(boxes),
        object_mask=object_mask,
        pixel_spacing_mm=pixel_spacing_mm,
    )


def _paint_thorax(signal: np.ndarray, rng: np.random.Generator, shift: np.ndarray) -> None:
    """Body with subcutaneous fat, lungs, liver, often the stomach, spine and descending aorta."""
    height, width = signal.shape
    centre = (
        width * rng.uniform(0.47, 0.53) + shift[0],
        height * rng.uniform(0.48, 0.54) + shift[1],
    )
    body = Frame(signal.shape, centre, rng.uniform(-0.1, 0.1), min(height, width) / 2)
    half_w, half_h = rng.uniform(0.86, 0.95), rng.uniform(0.72, 0.85)
    paint(signal, body.ellipse_alpha((0.0, 0.0), (half_w, half_h)), rng.uniform(*BODY_FAT_RANGE))
    fat = rng.uniform(0.05, 0.1)
    paint(signal, body.ellipse_alpha((0.0, 0.0), (half_w - fat, half_h - fat)), MUSCLE)
    for side in (-1, 1):
        paint(signal, body.ellipse_alpha((side * 0.5, -0.08), (0.32, 0.52)), LUNG)
    paint(signal, body.ellipse_alpha((-0.45, 0.55), (0.45, 0.3)), LIVER)
    if rng.random() < STOMACH_PROBABILITY:
        _paint_stomach(signal, body, rng)
    spine_centre = (rng.uniform(-0.06, 0.06), half_h - rng.uniform(0.18, 0.24))
    paint(signal, body.ellipse_alpha(spine_centre, (0.14, 0.12)), MYOCARDIUM)
    paint(signal, body.ellipse_alpha(spine_centre, (0.11, 0.095)), MARROW)
    aorta = (spine_centre[0] + 0.16, spine_centre[1] - 0.16)
    paint(signal, body.ellipse_alpha(aorta, (0.07, 0.07)), BLOOD * 0.9)


def _paint_stomach(signal: np.ndarray, body: Frame, rng: np.random.Generator) -> None:
    """The stomach under the left lung: bright fluid crossed by dark rugal folds."""
    centre = (rng.uniform(0.35, 0.55), rng.uniform(0.5, 0.62))
    axes = (rng.uniform(0.16, 0.24), rng.uniform(0.11, 0.16))
    paint(signal, body.ellipse_alpha(centre, (axes[0] + 0.025, axes[1] + 0.025)), MUSCLE)
    inside = body.ellipse_alpha(centre, axes)
    paint(signal, inside, rng.uniform(*STOMACH_FLUID_RANGE))
    low, high = RUGAL_FOLD_COUNT_RANGE
    for _ in range(int(rng.integers(low, high + 1))):
        angle = rng.uniform(0.0, np.pi)
        offset = rng.uniform(-0.8, 0.8)
        across = (offset * axes[0] * np.sin(angle), -offset * axes[1] * np.cos(angle))
        reach = (axes[0] * np.cos(angle), axes[1] * np.sin(angle))
        start = (centre[0] + across[0] - reach[0], centre[1] + across[1] - reach[1])
        end = (centre[0] + across[0] + reach[0], centre[1] + across[1] + reach[1])
        fold = body.capsule_alpha(start, end, rng.uniform(0.012, 0.022))
        paint(signal, fold * inside, MUSCLE)


def _heart_frame(shape: tuple[int, int], rng: np.random.Generator, shift: np.ndarray) -> Frame:
    """Where the heart is: the crux, the long-axis direction and the heart's length."""
    height, width = shape
    crux = (
        width * rng.uniform(0.44, 0.58) + shift[0],
        height * rng.uniform(0.48, 0.6) + shift[1],
    )
    tilt = np.deg2rad(rng.uniform(*HEART_TILT_RANGE_DEG))
    return Frame(shape, crux, tilt, min(shape) * rng.uniform(0.32, 0.44))


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
        (lv_centre, lv_axes, rng.uniform(*CHAMBER_BLOOD_RANGE)),
        (rv_centre, rv_axes, rng.uniform(*CHAMBER_BLOOD_RANGE)),
        (la_centre, la_axes, rng.uniform(*CHAMBER_BLOOD_RANGE)),
        (ra_centre, ra_axes, rng.uniform(*CHAMBER_BLOOD_RANGE)),
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


def _paint_vessels(
    signal: np.ndarray, heart: Frame, rng: np.random.Generator, label: int
) -> np.ndarray:
    """Draw the decoy vessels, the first as the LVOT when ``label`` is 1; returns the
    pixels the LVOT changed (none for a negative)."""
    slots = rng.spawn(draw_tube_count(rng))
    lvot = np.zeros(signal.shape, dtype=bool)
    for index, slot in enumerate(slots):
        if label and index == 0:
            lvot = paint_tube(signal, heart, outflow_tract(slot), bulb=True)
        else:
            paint_tube(signal, heart, decoy_tube(slot), bulb=False)
    return lvot


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
    shading = 0.35 + 0.65 * sensitivity / sensitivity.max()
    noise_level = rng.uniform(0.015, 0.04)
    real = signal * shading + noise_level * rng.standard_normal(signal.shape)
    imaginary = noise_level * rng.standard_normal(signal.shape)
    magnitude = np.hypot(real, imaginary) * rng.uniform(1400.0, 3200.0)
    return np.rint(np.clip(magnitude, 0.0, MAX_INTENSITY)).astype(np.uint16)
