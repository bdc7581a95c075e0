"""The patient-centred coordinate frame in which the chest phantom's anatomy is drawn.

Anatomy is drawn on a low-resolution grid (about 384 pixels on the long side) and
upsampled: it is smooth, and this keeps one 2048-pixel radiograph well under a second.
Coordinates are isotropic, in units of the lung height: ``x`` runs from the midline
towards the image right (the patient's left in a PA view), ``y`` down from the lung
apices (0) to the diaphragm domes (about 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOW_RES_LONG_SIDE = 384
"""Pixels on the long side of the grid the anatomy is drawn on."""


@dataclass(frozen=True)
class ChestFrame:
    """Chest coordinates of every pixel of the low-resolution grid.

    Attributes
    ----------
    x, y : numpy.ndarray
        ``(h, w)`` float32 chest coordinates of each grid pixel.
    thorax_half_width : float
        Half the width of the rib cage, in lung heights.
    """

    x: np.ndarray
    y: np.ndarray
    thorax_half_width: float

    @property
    def shape(self) -> tuple[int, int]:
        """``(h, w)`` of the low-resolution grid."""
        rows, columns = self.x.shape
        return rows, columns

    def lateral(self, side: int) -> np.ndarray:
        """Distance from the midline towards ``side`` (-1 image left, +1 image right),
        as a fraction of the thorax half width."""
        return side * self.x / self.thorax_half_width

    @classmethod
    def sample(cls, rng: np.random.Generator, height: int, width: int) -> ChestFrame:
        """A patient of random size, position and tilt in an image of ``height x width``."""
        scale = max(height, width) / LOW_RES_LONG_SIDE
        grid_h, grid_w = round(height / scale), round(width / scale)
        aspect = height / width
        lung_height = min(rng.uniform(0.50, 0.62), 0.70 * aspect)
        thorax_half_width = min(rng.uniform(0.70, 0.85), 0.47 / lung_height)
        centre_x = rng.uniform(-0.03, 0.03)
        apex_y = rng.uniform(0.04, 0.09) + max(aspect - 1.55 * lung_height, 0.0) * rng.uniform(
            0.2, 0.5
        )
        tilt = np.deg2rad(rng.uniform(-6.0, 6.0))
        # Image coordinates in widths, then rotated and scaled into lung heights.
        image_x = ((np.arange(grid_w, dtype=np.float32) + 0.5) / grid_w - 0.5 - centre_x)[None, :]
        image_y = ((np.arange(grid_h, dtype=np.float32) + 0.5) / grid_w - apex_y)[:, None]
        cos_t, sin_t = np.float32(np.cos(tilt)), np.float32(np.sin(tilt))
        x = (cos_t * image_x + sin_t * image_y) / lung_height
        y = (-sin_t * image_x + cos_t * image_y) / lung_height
        return cls(
            x=x.astype(np.float32),
            y=y.astype(np.float32),
            thorax_half_width=float(thorax_half_width),
        )


def ellipse_profile(
    frame: ChestFrame,
    centre: tuple[float, float],
    semi_axes: tuple[float, float],
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Projected thickness ``sqrt(1 - r^2)`` of an ellipsoid, 0 outside the ellipse."""
    angle = np.deg2rad(angle_deg)
    dx, dy = frame.x - centre[0], frame.y - centre[1]
    along = (np.cos(angle) * dx + np.sin(angle) * dy) / semi_axes[0]
    across = (-np.sin(angle) * dx + np.cos(angle) * dy) / semi_axes[1]
    return np.sqrt(np.clip(1.0 - along**2 - across**2, 0.0, None)).astype(np.float32)


def band_profile(
    frame: ChestFrame,
    side: int,
    lateral_range: tuple[float, float],
    curve: np.ndarray,
    half_thickness: float,
    hollow: float,
) -> np.ndarray:
    """A bone band along ``y = curve(lateral)`` on one side, e.g. a rib or a clavicle.

    Parameters
    ----------
    frame : ChestFrame
        The grid.
    side : int
        -1 for the image left, +1 for the image right.
    lateral_range : tuple of float
        Where the band runs, as fractions of the thorax half width.
    curve : numpy.ndarray
        Polynomial coefficients (highest power first) of ``y`` over the lateral fraction.
    half_thickness : float
        Half the band's height, in lung heights.
    hollow : float
        0 for a solid band; towards 1 for a tube whose cortex shows as bright edges.

    Returns
    -------
    numpy.ndarray
        Projected bone thickness, 0 outside the band.
    """
    lateral = frame.lateral(side)
    start, stop = lateral_range
    distance = (frame.y - np.polyval(curve, lateral)) / half_thickness
    outer = np.sqrt(np.clip(1.0 - distance**2, 0.0, None))
    inner = np.sqrt(np.clip(hollow**2 - distance**2, 0.0, None))
    taper = np.clip((lateral - start) / 0.04, 0.0, 1.0) * np.clip((stop - lateral) / 0.06, 0.0, 1.0)
    return ((outer - 0.8 * inner) * taper).astype(np.float32)
