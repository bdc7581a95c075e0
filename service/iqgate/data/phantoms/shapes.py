"""Vectorised rasterisation of the three shapes of the Object-CXR annotation grammar.

The grammar (PAPER.md, "Object-CXR data format") knows rectangles (type 0) and
ellipses (type 1), both given by their box ``x1 y1 x2 y2``, and polygons (type 2)
given by their vertices. Pixel ``(x, y)`` belongs to a shape when its centre, the
integer point ``(x, y)``, lies inside it; boxes are inclusive of both corners. Every
mask is computed on a :class:`Window` of the image only, never on the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

Box = tuple[int, int, int, int]
"""A pixel box ``(x1, y1, x2, y2)``, inclusive of both corners."""


class ShapeType(IntEnum):
    """The TYPE field of an Object-CXR annotation."""

    RECTANGLE = 0
    ELLIPSE = 1
    POLYGON = 2


@dataclass(frozen=True)
class Window:
    """Rows ``top..bottom`` and columns ``left..right`` (inclusive) of an image."""

    top: int
    left: int
    bottom: int
    right: int

    @classmethod
    def around(cls, box: Box, image_shape: tuple[int, int]) -> Window:
        """The window covering ``box`` clipped to an image of shape ``(height, width)``."""
        height, width = image_shape
        x1, y1, x2, y2 = box
        return cls(max(y1, 0), max(x1, 0), min(y2, height - 1), min(x2, width - 1))

    @property
    def region(self) -> tuple[slice, slice]:
        """The numpy index of the window in the image."""
        return slice(self.top, self.bottom + 1), slice(self.left, self.right + 1)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(ys, xs)`` shaped ``(rows, 1)`` and ``(1, cols)``."""
        ys = np.arange(self.top, self.bottom + 1, dtype=np.float64)[:, None]
        xs = np.arange(self.left, self.right + 1, dtype=np.float64)[None, :]
        return ys, xs


def rectangle_mask(box: Box, window: Window) -> np.ndarray:
    """Pixels of ``window`` inside the axis-aligned rectangle ``box``."""
    ys, xs = window.grid()
    x1, y1, x2, y2 = box
    return (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)


def ellipse_mask(box: Box, window: Window) -> np.ndarray:
    """Pixels of ``window`` inside the axis-aligned ellipse inscribed in ``box``.

    The semi-axes reach half a pixel beyond the extreme pixel centres, so the tight
    bounding box of the mask is ``box`` itself.
    """
    ys, xs = window.grid()
    x1, y1, x2, y2 = box
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    semi_x, semi_y = (x2 - x1) / 2 + 0.5, (y2 - y1) / 2 + 0.5
    return ((xs - centre_x) / semi_x) ** 2 + ((ys - centre_y) / semi_y) ** 2 <= 1.0


def polygon_mask(vertices: np.ndarray, window: Window) -> np.ndarray:
    """Pixels of ``window`` inside the closed polygon ``vertices`` (even-odd rule).

    Parameters
    ----------
    vertices : numpy.ndarray
        ``(n, 2)`` array of ``(x, y)`` vertices, ``n >= 3``.
    window : Window
        Where to rasterise.

    Returns
    -------
    numpy.ndarray
        Boolean mask of the window's shape.
    """
    ys, xs = window.grid()
    inside = np.zeros((ys.shape[0], xs.shape[1]), dtype=bool)
    start = vertices.astype(np.float64)
    end = np.roll(start, -1, axis=0)
    for (xa, ya), (xb, yb) in zip(start, end, strict=True):
        if ya == yb:
            continue
        crosses_row = (ya > ys) != (yb > ys)
        crossing_x = xa + (ys - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses_row & (xs < crossing_x)
    return inside


def mask_bounding_box(mask: np.ndarray, window: Window) -> Box | None:
    """Tight inclusive box, in image coordinates, of the pixels set in ``mask``."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return (
        window.left + int(cols[0]),
        window.top + int(rows[0]),
        window.left + int(cols[-1]),
        window.top + int(rows[-1]),
    )


def object_cxr_shape(shape_type: ShapeType, box: Box, vertices: np.ndarray | None = None) -> str:
    """One object in the Object-CXR grammar: ``"TYPE c1 c2 ..."``.

    Rectangles and ellipses are written with their box, polygons with their vertices.
    """
    if shape_type is ShapeType.POLYGON:
        if vertices is None:
            raise ValueError("a polygon (shape type 2) needs its vertices; got vertices=None")
        coordinates = [int(c) for c in np.asarray(vertices).reshape(-1)]
    else:
        coordinates = list(box)
    return " ".join(str(value) for value in [int(shape_type), *coordinates])
