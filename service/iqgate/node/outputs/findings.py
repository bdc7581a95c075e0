"""Where a saliency map points, in the pixel coordinates of the source image.

The saliency engine returns a map at the model's input resolution (the source frame
resized to ``S x S``). This module finds its peak and the hot spot around it and maps
both back to the source frame (``H`` rows, ``W`` columns).

Coordinates
-----------
Points are ``(x, y)`` = (column, row) with the *centre* of the top-left source pixel
at ``(0, 0)``: the convention of array indices, used by the JSON report. Input pixel
``i`` covers ``[i, i + 1)`` of the input grid, i.e. ``[i W / S, (i + 1) W / S)`` of the
source grid when edges are measured from ``0``; its centre is therefore

.. math::

    x = (i + 0.5) \\frac{W}{S} - 0.5, \\qquad y = (j + 0.5) \\frac{H}{S} - 0.5 .

A hot-spot box ``(x1, y1, x2, y2)`` holds the outer edges of its input pixels, so
``x1 = i_0 W / S - 0.5`` and ``x2 = (i_1 + 1) W / S - 0.5`` for columns ``i_0 .. i_1``;
the full frame is ``(-0.5, -0.5, W - 0.5, H - 0.5)``. DICOM SR spatial coordinates
(PS3.3 C.18.6.1.1) put the top-left *corner* of the image at ``(0, 0)``: add 0.5 to
both axes (:func:`to_dicom_image_coordinates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from iqgate.errors import SaliencyError

HOTSPOT_LEVEL = 0.5
"""A pixel belongs to the hot spot when its saliency is at least this share of the peak."""

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Finding:
    """The peak of a saliency map and its hot spot, in source pixel coordinates.

    Attributes
    ----------
    peak_xy
        ``(x, y)``: centre of the input pixel with the highest saliency.
    hotspot_box
        ``(x1, y1, x2, y2)``: outer edges of the 8-connected region with saliency
        of at least :data:`HOTSPOT_LEVEL` times the peak that contains the peak.
    """

    peak_xy: tuple[float, float]
    hotspot_box: tuple[float, float, float, float]


def locate_finding(
    saliency: np.ndarray, source_shape: tuple[int, int], *, level: float = HOTSPOT_LEVEL
) -> Finding:
    """Find the peak and the hot-spot box of ``saliency`` in source pixel coordinates.

    Parameters
    ----------
    saliency
        Map ``[S_rows, S_cols]`` at model input resolution (usually square).
    source_shape
        ``(H, W)``: rows and columns of the source frame.
    level
        Share of the peak value that bounds the hot spot, in ``(0, 1]``.

    Returns
    -------
    Finding
        The first maximum in row-major order is the peak.

    Raises
    ------
    SaliencyError
        When the map has no positive finite peak (an all-zero or non-finite map
        points nowhere); report the image as not explained.
    """
    if saliency.ndim != 2 or saliency.size == 0:
        raise ValueError(f"saliency must be a non-empty 2-D map; got shape {saliency.shape}")
    rows, cols = source_shape
    if rows < 1 or cols < 1:
        raise ValueError(f"source_shape must be (rows, columns) >= 1; got {source_shape}")
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level must be in (0, 1]; got {level}")
    if not np.all(np.isfinite(saliency)):
        raise SaliencyError("saliency map holds NaN or infinite values; nothing to locate")
    peak_value = float(saliency.max())
    if peak_value <= 0.0:
        raise SaliencyError(f"saliency map peaks at {peak_value}; nothing to locate")

    peak_row, peak_col = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    labels, _ = ndimage.label(saliency >= level * peak_value, structure=_EIGHT_CONNECTED)
    region_rows, region_cols = np.nonzero(labels == labels[peak_row, peak_col])

    scale_x = cols / saliency.shape[1]
    scale_y = rows / saliency.shape[0]
    return Finding(
        peak_xy=(float(peak_col + 0.5) * scale_x - 0.5, float(peak_row + 0.5) * scale_y - 0.5),
        hotspot_box=(
            float(region_cols.min()) * scale_x - 0.5,
            float(region_rows.min()) * scale_y - 0.5,
            float(region_cols.max() + 1) * scale_x - 0.5,
            float(region_rows.max() + 1) * scale_y - 0.5,
        ),
    )


def to_dicom_image_coordinates(points_xy: np.ndarray) -> np.ndarray:
    """Shift ``(x, y)`` points from pixel-centre to DICOM image coordinates (+0.5).

    PS3.3 C.18.6.1.1: in SCOORD content items the top-left corner of the top-left
    pixel is ``(0, 0)`` and that pixel's centre is ``(0.5, 0.5)``.
    """
    return np.asarray(points_xy, dtype=np.float64) + 0.5
