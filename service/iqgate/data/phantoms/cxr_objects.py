"""Foreign objects on the chest phantom, of the kinds seen in Object-CXR.

What makes an object foreign is its shape and topology, never its grey level or size
(those come from the shared :class:`~iqgate.data.phantoms.cxr_stamp.Placement`):
buttons have holes, coins an embossed rim, clips sharp corners or a hollow frame,
wires and ECG leads are thin curved bands, rings are hollow, pendants star-shaped,
ECG electrodes a faint pad around a dense snap. Annotated as the grammar's
rectangles, ellipses and polygons. A stamp's ``kind`` names the object's form: the
kind's value, with the variant for clips (``clip-frame``, ``clip-bar``) and jewellery
(``jewellery-ring``, ``jewellery-pendant``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import numpy as np

from iqgate.data.phantoms.cxr_stamp import (
    ImageShape,
    Placement,
    Stamp,
    band_outline,
    box_at,
    polygon_stamp,
    shrunk,
    uniform,
)
from iqgate.data.phantoms.shapes import ShapeType, Window, ellipse_mask, rectangle_mask


class ForeignObjectKind(str, Enum):
    """What a foreign object is."""

    BUTTON = "button"
    COIN = "coin"
    CLIP = "clip"
    WIRE = "wire"
    JEWELLERY = "jewellery"
    ECG_ELECTRODE = "ecg-electrode"


KIND_PROBABILITIES = {
    ForeignObjectKind.BUTTON: 0.2,
    ForeignObjectKind.COIN: 0.1,
    ForeignObjectKind.CLIP: 0.2,
    ForeignObjectKind.WIRE: 0.2,
    ForeignObjectKind.JEWELLERY: 0.15,
    ForeignObjectKind.ECG_ELECTRODE: 0.15,
}

CLIP_FRAME = f"{ForeignObjectKind.CLIP.value}-frame"
CLIP_BAR = f"{ForeignObjectKind.CLIP.value}-bar"
JEWELLERY_RING = f"{ForeignObjectKind.JEWELLERY.value}-ring"
JEWELLERY_PENDANT = f"{ForeignObjectKind.JEWELLERY.value}-pendant"


def stamp_foreign_object(
    rng: np.random.Generator, placement: Placement, image_shape: ImageShape
) -> Stamp:
    """A foreign object of a random kind at ``placement``."""
    kinds = list(KIND_PROBABILITIES)
    kind = kinds[rng.choice(len(kinds), p=list(KIND_PROBABILITIES.values()))]
    return _STAMPS[kind](rng, placement, image_shape)


def _button(rng: np.random.Generator, placement: Placement, image_shape: ImageShape) -> Stamp:
    """A button: a disc with two or four holes."""
    size = placement.size
    box = box_at(placement.centre, (size, size), image_shape)
    window = Window.around(box, image_shape)
    mask = ellipse_mask(box, window)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hole, offset = max(1.0, size * 0.1), size * 0.2
    pairs = [(-1, -1), (1, 1)] if rng.random() < 0.5 else [(-1, -1), (1, -1), (-1, 1), (1, 1)]
    for dx, dy in pairs:
        hx, hy = cx + dx * offset, cy + dy * offset
        mask &= ~ellipse_mask(
            (round(hx - hole), round(hy - hole), round(hx + hole), round(hy + hole)), window
        )
    return Stamp(ForeignObjectKind.BUTTON.value, ShapeType.ELLIPSE, window, mask, uniform(window))


def _coin(rng: np.random.Generator, placement: Placement, image_shape: ImageShape) -> Stamp:
    """A coin: a disc, seen slightly tilted, whose embossed rim is denser than its face."""
    size = placement.size
    box = box_at(placement.centre, (size, size * rng.uniform(0.85, 1.0)), image_shape)
    window = Window.around(box, image_shape)
    pattern = uniform(window)
    rim = max(1, round(size * 0.12))
    pattern[ellipse_mask(shrunk(box, rim), window)] = 0.55
    return Stamp(
        ForeignObjectKind.COIN.value, ShapeType.ELLIPSE, window, ellipse_mask(box, window), pattern
    )


def _clip(rng: np.random.Generator, placement: Placement, image_shape: ImageShape) -> Stamp:
    """A clip: a hollow wire frame (rectangle) or, rotated, a bar with sharp corners."""
    size, centre = placement.size, placement.centre
    short = size * rng.uniform(0.3, 0.5)
    if rng.random() < 0.5:
        extent = (size, short) if rng.random() < 0.5 else (short, size)
        box = box_at(centre, extent, image_shape)
        window = Window.around(box, image_shape)
        wire = max(2, round(short * 0.25))
        mask = rectangle_mask(box, window) & ~rectangle_mask(shrunk(box, wire), window)
        return Stamp(CLIP_FRAME, ShapeType.RECTANGLE, window, mask, uniform(window))
    angle = rng.uniform(0.0, np.pi)
    along = np.array([np.cos(angle), np.sin(angle)]) * size / 2
    across = np.array([-np.sin(angle), np.cos(angle)]) * short / 2
    corners = np.array(centre) + np.array(
        [-along - across, along - across, along + across, -along + across]
    )
    return polygon_stamp(CLIP_BAR, corners, image_shape)


def _wire(rng: np.random.Generator, placement: Placement, image_shape: ImageShape) -> Stamp:
    """An ECG lead or wire: a thin band along an S-curve, annotated as a polygon."""
    size = placement.size * 1.4
    angle = rng.uniform(0.0, 2.0 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    t = np.linspace(-0.5, 0.5, 16)[:, None]
    bend = rng.uniform(0.1, 0.25) * size * rng.choice([-1.0, 1.0])
    spine = (
        np.array(placement.centre) + t * size * direction + np.sin(2 * np.pi * t) * bend * normal
    )
    half_thickness = max(1.5 * max(image_shape) / 256, placement.size * 0.07)
    outline = band_outline(spine, half_thickness)
    return polygon_stamp(ForeignObjectKind.WIRE.value, outline, image_shape)


def _jewellery(rng: np.random.Generator, placement: Placement, image_shape: ImageShape) -> Stamp:
    """A ring (hollow ellipse) or a pendant (star-shaped polygon)."""
    size, centre = placement.size, placement.centre
    if rng.random() < 0.5:
        box = box_at(centre, (size, size * rng.uniform(0.7, 1.0)), image_shape)
        window = Window.around(box, image_shape)
        band = max(2, round(size * 0.16))
        mask = ellipse_mask(box, window) & ~ellipse_mask(shrunk(box, band), window)
        return Stamp(JEWELLERY_RING, ShapeType.ELLIPSE, window, mask, uniform(window))
    points = int(rng.integers(5, 8))
    angles = np.linspace(0.0, 2.0 * np.pi, 2 * points, endpoint=False) + rng.uniform(0, np.pi)
    radii = np.where(np.arange(2 * points) % 2 == 0, size / 2, size / 2 * rng.uniform(0.35, 0.5))
    outline = np.array(centre) + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return polygon_stamp(JEWELLERY_PENDANT, outline, image_shape)


def _ecg_electrode(
    rng: np.random.Generator, placement: Placement, image_shape: ImageShape
) -> Stamp:
    """An electrode: a faint pad around a dense metal snap."""
    size = placement.size
    box = box_at(placement.centre, (size, size), image_shape)
    window = Window.around(box, image_shape)
    pattern = uniform(window, rng.uniform(0.35, 0.5))
    snap = max(1, round(size * 0.32))
    pattern[ellipse_mask(shrunk(box, snap), window)] = 1.0
    return Stamp(
        ForeignObjectKind.ECG_ELECTRODE.value,
        ShapeType.ELLIPSE,
        window,
        ellipse_mask(box, window),
        pattern,
    )


_STAMPS: dict[ForeignObjectKind, Callable[[np.random.Generator, Placement, ImageShape], Stamp]] = {
    ForeignObjectKind.BUTTON: _button,
    ForeignObjectKind.COIN: _coin,
    ForeignObjectKind.CLIP: _clip,
    ForeignObjectKind.WIRE: _wire,
    ForeignObjectKind.JEWELLERY: _jewellery,
    ForeignObjectKind.ECG_ELECTRODE: _ecg_electrode,
}
