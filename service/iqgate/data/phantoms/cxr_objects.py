"""Foreign objects on the chest phantom, of the kinds seen in Object-CXR.

Buttons, coins, clips, wires and ECG leads, jewellery and ECG electrodes, drawn as the
grammar's rectangles, ellipses and polygons with hard edges and metal-bright grey
(0.84 to 1 of full scale; anatomy stays below 0.76). Sizes run log-uniformly from
about 3 pixels at a 256-pixel model input up to a tenth of the image width.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from iqgate.data.phantoms.shapes import (
    Box,
    ShapeType,
    Window,
    ellipse_mask,
    mask_bounding_box,
    object_cxr_shape,
    polygon_mask,
    rectangle_mask,
)

OBJECT_COUNT_PROBABILITIES = (0.35, 0.25, 0.15, 0.10, 0.08, 0.07)
"""Probability of 1, 2, ..., 6 foreign objects on a positive radiograph."""

ImageShape = tuple[int, int]
Point = tuple[float, float]

MODEL_INPUT_SIDE = 256
"""The smallest objects are about 3 pixels at this model input size."""


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


@dataclass(frozen=True)
class DrawnObject:
    """A foreign object as drawn: its kind, tight box and Object-CXR shape string."""

    kind: ForeignObjectKind
    box: Box
    shape: str


@dataclass(frozen=True)
class _Stamp:
    """Pixels of one object in a window, their grey values, and how it is annotated."""

    shape_type: ShapeType
    window: Window
    mask: np.ndarray
    grey: np.ndarray
    vertices: np.ndarray | None = None


def draw_foreign_objects(
    image: np.ndarray, object_mask: np.ndarray, rng: np.random.Generator, count: int
) -> list[DrawnObject]:
    """Draw ``count`` foreign objects into ``image`` and mark their pixels in ``object_mask``.

    Parameters
    ----------
    image : numpy.ndarray
        Float grey radiograph in [0, 1], changed in place.
    object_mask : numpy.ndarray
        Boolean mask of the same shape, set in place where objects are drawn.
    rng : numpy.random.Generator
        The sample's object stream.
    count : int
        Number of objects.

    Returns
    -------
    list of DrawnObject
        The objects in drawing order; each box is the tight box of its drawn pixels.
    """
    height, width = image.shape
    smallest = 3.0 * max(height, width) / MODEL_INPUT_SIDE
    largest = width / 10.0
    kinds = list(KIND_PROBABILITIES)
    drawn = []
    for _ in range(count):
        kind = kinds[rng.choice(len(kinds), p=list(KIND_PROBABILITIES.values()))]
        size = float(np.exp(rng.uniform(np.log(smallest), np.log(largest))))
        centre = (rng.uniform(0.08, 0.92) * width, rng.uniform(0.06, 0.94) * height)
        stamp = _STAMPS[kind](rng, size, centre, (height, width))
        region = image[stamp.window.region]
        region[stamp.mask] = stamp.grey[stamp.mask]
        object_mask[stamp.window.region] |= stamp.mask
        box = mask_bounding_box(stamp.mask, stamp.window)
        if box is None:
            raise RuntimeError(f"a {kind.value} of size {size:.1f} px drew no pixel")
        drawn.append(
            DrawnObject(kind, box, object_cxr_shape(stamp.shape_type, box, stamp.vertices))
        )
    return drawn


def _box_at(centre: Point, extent: Point, image_shape: ImageShape) -> Box:
    """An integer box of ``extent`` (w, h) around ``centre``, moved inside the image."""
    height, width = image_shape
    box_w = int(np.clip(round(extent[0]), 2, width - 1))
    box_h = int(np.clip(round(extent[1]), 2, height - 1))
    x1 = int(np.clip(round(centre[0] - box_w / 2), 0, width - 1 - box_w))
    y1 = int(np.clip(round(centre[1] - box_h / 2), 0, height - 1 - box_h))
    return x1, y1, x1 + box_w, y1 + box_h


def _inside_image(vertices: np.ndarray, image_shape: ImageShape) -> np.ndarray:
    """Integer polygon vertices, shifted as a whole so that they lie inside the image."""
    height, width = image_shape
    vertices = np.round(vertices).astype(np.int64)
    limits = np.array([width - 1, height - 1])
    shift = np.clip(-vertices.min(axis=0), 0, None) - np.clip(
        vertices.max(axis=0) - limits, 0, None
    )
    return vertices + shift


def _shrunk(box: Box, by: int) -> Box:
    """``box`` with each side moved inwards by ``by`` pixels."""
    x1, y1, x2, y2 = box
    return x1 + by, y1 + by, x2 - by, y2 - by


def _filled(window: Window, value: float) -> np.ndarray:
    """A grey-value array of the window's shape, all ``value``."""
    return np.full((window.bottom - window.top + 1, window.right - window.left + 1), value)


def _coin(rng: np.random.Generator, size: float, centre: Point, image_shape: ImageShape) -> _Stamp:
    """A coin: a metal disc, seen slightly tilted, with an embossed rim."""
    box = _box_at(centre, (size, size * rng.uniform(0.85, 1.0)), image_shape)
    window = Window.around(box, image_shape)
    grey = _filled(window, rng.uniform(0.95, 1.0))
    rim = max(1, round(size * 0.08))
    if box[2] - box[0] > 4 * rim:
        grey[ellipse_mask(_shrunk(box, rim), window)] -= 0.03
    return _Stamp(ShapeType.ELLIPSE, window, ellipse_mask(box, window), grey)


def _button(
    rng: np.random.Generator, size: float, centre: Point, image_shape: ImageShape
) -> _Stamp:
    """A button: a plastic or metal disc with two or four holes."""
    size = min(size, 0.5 * image_shape[1] / 10.0)
    box = _box_at(centre, (size, size), image_shape)
    window = Window.around(box, image_shape)
    mask = ellipse_mask(box, window)
    if size >= 12:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        hole, offset = max(1.0, size * 0.08), size * 0.15
        for dx, dy in (
            [(-1, -1), (1, 1)] if rng.random() < 0.5 else [(-1, -1), (1, -1), (-1, 1), (1, 1)]
        ):
            hx, hy = cx + dx * offset, cy + dy * offset
            hole_box = (round(hx - hole), round(hy - hole), round(hx + hole), round(hy + hole))
            mask &= ~ellipse_mask(hole_box, window)
    return _Stamp(ShapeType.ELLIPSE, window, mask, _filled(window, rng.uniform(0.84, 0.93)))


def _clip(rng: np.random.Generator, size: float, centre: Point, image_shape: ImageShape) -> _Stamp:
    """A clip: a wire frame (rectangle) or, when rotated, a solid bar (polygon)."""
    short = size * rng.uniform(0.25, 0.5)
    grey = rng.uniform(0.92, 1.0)
    if rng.random() < 0.5:
        box = _box_at(centre, (size, short) if rng.random() < 0.5 else (short, size), image_shape)
        window = Window.around(box, image_shape)
        wire = max(2, round(short * 0.2))
        mask = rectangle_mask(box, window) & ~rectangle_mask(_shrunk(box, wire), window)
        return _Stamp(ShapeType.RECTANGLE, window, mask, _filled(window, grey))
    angle = rng.uniform(0.0, np.pi)
    along = np.array([np.cos(angle), np.sin(angle)]) * size / 2
    across = np.array([-np.sin(angle), np.cos(angle)]) * short / 2
    corners = np.array(centre) + np.array(
        [-along - across, along - across, along + across, -along + across]
    )
    return _polygon_stamp(_inside_image(corners, image_shape), grey, image_shape)


def _wire(rng: np.random.Generator, size: float, centre: Point, image_shape: ImageShape) -> _Stamp:
    """An ECG lead or wire: a thin band along a curve, annotated as a polygon."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    t = np.linspace(-0.5, 0.5, 12)[:, None]
    bend = rng.uniform(-0.3, 0.3) * size
    spine = np.array(centre) + t * size * direction + (1.0 - 4.0 * t**2) * bend * normal
    half_thickness = rng.uniform(max(1.0, image_shape[1] / 1000), image_shape[1] / 400)
    tangents = np.gradient(spine, axis=0)
    normals = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    outline = np.concatenate(
        [spine + half_thickness * normals, (spine - half_thickness * normals)[::-1]]
    )
    return _polygon_stamp(_inside_image(outline, image_shape), rng.uniform(0.88, 1.0), image_shape)


def _jewellery(
    rng: np.random.Generator, size: float, centre: Point, image_shape: ImageShape
) -> _Stamp:
    """A ring (hollow ellipse) or a pendant (star-shaped polygon)."""
    grey = rng.uniform(0.9, 1.0)
    if rng.random() < 0.5:
        box = _box_at(centre, (size, size * rng.uniform(0.6, 1.0)), image_shape)
        window = Window.around(box, image_shape)
        band = max(2, round(size * 0.12))
        mask = ellipse_mask(box, window) & ~ellipse_mask(_shrunk(box, band), window)
        return _Stamp(ShapeType.ELLIPSE, window, mask, _filled(window, grey))
    points = int(rng.integers(5, 9))
    angles = np.sort(rng.uniform(0.0, 2.0 * np.pi, points))
    radii = size / 2 * rng.uniform(0.55, 1.0, points)
    outline = np.array(centre) + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _polygon_stamp(_inside_image(outline, image_shape), grey, image_shape)


def _ecg_electrode(
    rng: np.random.Generator, size: float, centre: Point, image_shape: ImageShape
) -> _Stamp:
    """An electrode pad (faint disc) with its bright metal snap in the middle."""
    box = _box_at(centre, (size, size), image_shape)
    window = Window.around(box, image_shape)
    grey = _filled(window, rng.uniform(0.84, 0.88))
    snap = max(1, round(size * 0.32))
    if box[2] - box[0] > 2 * snap:
        grey[ellipse_mask(_shrunk(box, snap), window)] = rng.uniform(0.95, 1.0)
    return _Stamp(ShapeType.ELLIPSE, window, ellipse_mask(box, window), grey)


def _polygon_stamp(vertices: np.ndarray, grey: float, image_shape: ImageShape) -> _Stamp:
    """A solid polygon of one grey value, annotated by its vertices."""
    x1, y1 = vertices.min(axis=0)
    x2, y2 = vertices.max(axis=0)
    window = Window.around((int(x1), int(y1), int(x2), int(y2)), image_shape)
    return _Stamp(
        ShapeType.POLYGON, window, polygon_mask(vertices, window), _filled(window, grey), vertices
    )


_STAMPS = {
    ForeignObjectKind.BUTTON: _button,
    ForeignObjectKind.COIN: _coin,
    ForeignObjectKind.CLIP: _clip,
    ForeignObjectKind.WIRE: _wire,
    ForeignObjectKind.JEWELLERY: _jewellery,
    ForeignObjectKind.ECG_ELECTRODE: _ecg_electrode,
}
