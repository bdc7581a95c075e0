"""One dense structure of the chest phantom as pixels: where it goes and how it is stamped.

A :class:`Placement` (centre, size, contrast) is drawn by one generator for foreign
objects and decoys alike; a :class:`Stamp` is what a kind makes of it: the pixels it
covers in a window, their relative density pattern and how it is annotated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iqgate.data.phantoms.shapes import Box, ShapeType, Window, polygon_mask

ImageShape = tuple[int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class Placement:
    """Where a structure is drawn (``centre`` x, y in pixels), its extent ``size`` in
    pixels and the grey ``contrast`` it adds over the local background."""

    centre: Point
    size: float
    contrast: float


@dataclass(frozen=True)
class Stamp:
    """The pixels of one structure in a window and their relative density (0..1)."""

    kind: str
    shape_type: ShapeType
    window: Window
    mask: np.ndarray
    pattern: np.ndarray
    vertices: np.ndarray | None = None


def box_at(centre: Point, extent: Point, image_shape: ImageShape) -> Box:
    """An integer box of ``extent`` (w, h) around ``centre``, moved inside the image."""
    height, width = image_shape
    box_w = int(np.clip(round(extent[0]), 2, width - 1))
    box_h = int(np.clip(round(extent[1]), 2, height - 1))
    x1 = int(np.clip(round(centre[0] - box_w / 2), 0, width - 1 - box_w))
    y1 = int(np.clip(round(centre[1] - box_h / 2), 0, height - 1 - box_h))
    return x1, y1, x1 + box_w, y1 + box_h


def shrunk(box: Box, by: int) -> Box:
    """``box`` with each side moved inwards by ``by`` pixels."""
    x1, y1, x2, y2 = box
    return x1 + by, y1 + by, x2 - by, y2 - by


def uniform(window: Window, value: float = 1.0) -> np.ndarray:
    """A density pattern of the window's shape, all ``value``."""
    return np.full((window.bottom - window.top + 1, window.right - window.left + 1), value)


def band_outline(spine: np.ndarray, half_thickness: float) -> np.ndarray:
    """The closed outline of a band of ``half_thickness`` around the polyline ``spine``."""
    tangents = np.gradient(spine, axis=0)
    normals = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return np.concatenate(
        [spine + half_thickness * normals, (spine - half_thickness * normals)[::-1]]
    )


def polygon_stamp(kind: str, outline: np.ndarray, image_shape: ImageShape) -> Stamp:
    """A solid polygon of uniform density, shifted inside the image, annotated by its vertices."""
    height, width = image_shape
    vertices = np.round(outline).astype(np.int64)
    limits = np.array([width - 1, height - 1])
    vertices += np.clip(-vertices.min(axis=0), 0, None) - np.clip(
        vertices.max(axis=0) - limits, 0, None
    )
    x1, y1 = vertices.min(axis=0)
    x2, y2 = vertices.max(axis=0)
    window = Window.around((int(x1), int(y1), int(x2), int(y2)), image_shape)
    return Stamp(
        kind, ShapeType.POLYGON, window, polygon_mask(vertices, window), uniform(window), vertices
    )
