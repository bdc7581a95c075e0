"""Painting soft-edged tissue regions onto an MR image, back to front.

Each region has a signal level and a linear edge ramp about one pixel wide with
finite support, so a region changes exactly the pixels its ramp reaches; that is how
the LVOT's changed pixels, and so its box, are known exactly.
"""

from __future__ import annotations

import numpy as np

EDGE_PX = 1.4
"""Width of the edge ramp in pixels (partial-volume blur of a region's border)."""


class Frame:
    """Coordinates ``(u, v)`` of every pixel in a rotated, scaled frame.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the frame in pixels.
    origin : tuple of float
        ``(x, y)`` pixel position of the frame's origin.
    angle_rad : float
        Direction of the frame's ``u`` axis, measured from the image's x axis.
    unit_px : float
        Pixels per frame unit.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        origin: tuple[float, float],
        angle_rad: float,
        unit_px: float,
    ) -> None:
        ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
        dx, dy = xs - origin[0], ys - origin[1]
        self.u = (np.cos(angle_rad) * dx + np.sin(angle_rad) * dy) / unit_px
        self.v = (-np.sin(angle_rad) * dx + np.cos(angle_rad) * dy) / unit_px
        self.unit_px = unit_px

    def ellipse_alpha(
        self, centre: tuple[float, float], semi_axes: tuple[float, float]
    ) -> np.ndarray:
        """Coverage in [0, 1] of an ellipse aligned with the frame's axes."""
        radius = np.hypot((self.u - centre[0]) / semi_axes[0], (self.v - centre[1]) / semi_axes[1])
        distance_px = (radius - 1.0) * min(semi_axes) * self.unit_px
        return np.clip(0.5 - distance_px / EDGE_PX, 0.0, 1.0)

    def capsule_alpha(
        self, start: tuple[float, float], end: tuple[float, float], radius: float
    ) -> np.ndarray:
        """Coverage in [0, 1] of a tube of ``radius`` with round ends, from ``start`` to ``end``."""
        step_u, step_v = end[0] - start[0], end[1] - start[1]
        along = ((self.u - start[0]) * step_u + (self.v - start[1]) * step_v) / (
            step_u**2 + step_v**2
        )
        along = np.clip(along, 0.0, 1.0)
        gap = np.hypot(self.u - start[0] - along * step_u, self.v - start[1] - along * step_v)
        distance_px = (gap - radius) * self.unit_px
        return np.clip(0.5 - distance_px / EDGE_PX, 0.0, 1.0)


def paint(image: np.ndarray, alpha: np.ndarray, level: float) -> np.ndarray:
    """Lay a region of signal ``level`` and coverage ``alpha`` over ``image`` in place.

    Returns
    -------
    numpy.ndarray
        Boolean mask of the pixels whose value changed.
    """
    painted = image * (1.0 - alpha) + level * alpha
    changed = painted != image
    image[...] = painted
    return changed


def paint_over(image: np.ndarray, alpha: np.ndarray, level: float) -> np.ndarray:
    """Like :func:`paint`, but only where the region is brighter than the tissue below
    (blood in a vessel does not darken the blood pool it runs through)."""
    painted = np.maximum(image, image * (1.0 - alpha) + level * alpha)
    changed = painted != image
    image[...] = painted
    return changed
