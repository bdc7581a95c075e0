r"""The Pointing Game (paper section 4.2) and an all-objects score beyond the paper.

The rule, as shared/PAPER.md ("Evaluation") fixes it:

- the point is the *first* maximum of the saliency map in row-major order;
- the ground truth is the union of the boxes, each ``(x1, y1, x2, y2)`` inclusive of
  both corners, x the column and y the row;
- the image is a hit when some ground-truth pixel lies strictly within :math:`\tau`
  of the point, :math:`d^2 < \tau^2` (the authors' code and TorchRay);
- only images with at least one box count: :math:`A = T / (T + F)` (eq. 17).

The distance from a pixel :math:`(r, c)` to an inclusive box is that to its nearest
pixel, found by clamping: :math:`d_x = \max(x_1 - c, 0, c - x_2)`, likewise
:math:`d_y`, so no mask is ever drawn.

The paper names its own limitation (section 5): with many boxes, pointing at any one
of them counts. :func:`objects_hit_fraction` asks for every object: the top-k peaks of
the map (k = number of objects, separated by non-maximum suppression) and the fraction
of the objects that some peak hits by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

Saliency = np.ndarray | torch.Tensor
"""A saliency map [H, W] (numpy array or torch tensor, any real dtype)."""
Boxes = np.ndarray | torch.Tensor | Sequence[Sequence[float]]
"""Inclusive boxes [N, 4] as ``(x1, y1, x2, y2)``, in the saliency map's pixel frame."""


def _as_map(saliency: Saliency) -> np.ndarray:
    if isinstance(saliency, torch.Tensor):
        saliency = saliency.detach().float().cpu().numpy()
    values = np.asarray(saliency, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(
            f"saliency must be one non-empty map [H, W], got shape {values.shape}; "
            "index a batch first (maps[i])"
        )
    if not np.isfinite(values).all():
        raise ValueError("saliency holds NaN or infinite values; its maximum is undefined")
    return values


def _as_boxes(boxes: Boxes, shape: tuple[int, int]) -> np.ndarray:
    """Boxes as int64 [N, 4], rounded to whole pixels and clipped to the map."""
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4] as (x1, y1, x2, y2), got shape {array.shape}")
    whole = np.rint(array).astype(np.int64)
    if (whole[:, 2] < whole[:, 0]).any() or (whole[:, 3] < whole[:, 1]).any():
        raise ValueError(
            f"boxes need x1 <= x2 and y1 <= y2 (x is the column), got {whole.tolist()}"
        )
    height, width = shape
    outside = (
        (whole[:, 0] > width - 1)
        | (whole[:, 2] < 0)
        | (whole[:, 1] > height - 1)
        | (whole[:, 3] < 0)
    )
    if outside.any():
        raise ValueError(
            f"boxes {whole[outside].tolist()} lie outside the {height} x {width} map; boxes and "
            "map must share one pixel frame (input or native resolution)"
        )
    whole[:, [0, 2]] = whole[:, [0, 2]].clip(0, width - 1)
    whole[:, [1, 3]] = whole[:, [1, 3]].clip(0, height - 1)
    return whole


def _check_tau(tau: float) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)):
        raise TypeError(f"tau must be a number of pixels, got {tau!r}")
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(
            f"tau must be a positive distance in pixels (the paper uses 15), got {tau}"
        )
    return float(tau)


def first_maximum(saliency: Saliency) -> tuple[int, int]:
    """``(row, column)`` of the first maximum of a map in row-major order.

    >>> first_maximum(np.array([[0, 2, 2], [2, 1, 0]]))
    (0, 1)
    """
    values = _as_map(saliency)
    row, column = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(row), int(column)


def squared_distances(point: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """Squared distance from pixel ``(row, column)`` to the nearest pixel of each box.

    ``boxes`` is int [N, 4] ``(x1, y1, x2, y2)``, inclusive; a point inside a box is at 0.
    """
    row, column = point
    dx = np.maximum(np.maximum(boxes[:, 0] - column, column - boxes[:, 2]), 0)
    dy = np.maximum(np.maximum(boxes[:, 1] - row, row - boxes[:, 3]), 0)
    return dx.astype(np.float64) ** 2 + dy.astype(np.float64) ** 2


def pointing_game(saliency: Saliency, boxes: Boxes, tau: float = 15.0) -> bool | None:
    """Whether the first maximum of ``saliency`` points at the ground truth (section 4.2).

    Parameters
    ----------
    saliency : numpy.ndarray or torch.Tensor
        One map [H, W].
    boxes : array-like
        Inclusive boxes [N, 4] ``(x1, y1, x2, y2)`` in the map's pixel frame (x is the
        column); coordinates are rounded to whole pixels.
    tau : float
        Tolerance in pixels: a hit needs a box pixel at distance ``d`` with
        ``d**2 < tau**2`` from the maximum.

    Returns
    -------
    bool or None
        None when there are no boxes (the image does not count), else hit or miss.

    Examples
    --------
    >>> saliency = np.zeros((40, 60)); saliency[10, 50] = 1.0
    >>> pointing_game(saliency, [(20, 5, 30, 15)], tau=15)   # 20 columns away
    False
    >>> pointing_game(saliency, [(20, 5, 30, 15), (40, 15, 45, 20)], tau=15)
    True
    >>> pointing_game(saliency, []) is None
    True
    """
    tau = _check_tau(tau)
    values = _as_map(saliency)
    whole = _as_boxes(boxes, values.shape)
    if len(whole) == 0:
        return None
    return bool((squared_distances(first_maximum(values), whole) < tau * tau).any())


def top_peaks(saliency: Saliency, k: int, radius: float) -> list[tuple[int, int]]:
    """Up to ``k`` peaks ``(row, column)`` by greedy non-maximum suppression.

    Each peak is the first maximum (row-major) of what is left; every pixel strictly
    within ``radius`` of it (and the peak itself) is then removed, so any two peaks are
    at least ``radius`` apart. Fewer than ``k`` come back when the map runs out.
    """
    if k < 0:
        raise ValueError(f"k must be a non-negative number of peaks, got {k}")
    if not math.isfinite(radius) or radius < 0:
        raise ValueError(f"the suppression radius must be a non-negative distance, got {radius}")
    values = _as_map(saliency).copy()
    width = values.shape[1]
    reach = math.ceil(radius)
    peaks: list[tuple[int, int]] = []
    while len(peaks) < k:
        row, column = divmod(int(np.argmax(values)), width)
        if values[row, column] == -np.inf:
            break
        peaks.append((row, column))
        top, left = max(0, row - reach), max(0, column - reach)
        window = values[top : row + reach + 1, left : column + reach + 1]
        rows, columns = np.ogrid[top : top + window.shape[0], left : left + window.shape[1]]
        window[(rows - row) ** 2 + (columns - column) ** 2 < radius * radius] = -np.inf
        values[row, column] = -np.inf
    return peaks


def objects_hit_fraction(
    saliency: Saliency,
    boxes: Boxes,
    tau: float = 15.0,
    k: int | None = None,
    nms_radius: float | None = None,
) -> float | None:
    """Fraction of the objects (boxes) hit by the top-k peaks of the map.

    Beyond the paper, which names the limitation (section 5): the Pointing Game counts
    an image with several objects as a hit when any one is found. Here every box is an
    object; an object is hit when some peak lies strictly within ``tau`` of one of its
    pixels, by the Pointing Game's rule.

    Parameters
    ----------
    saliency, boxes, tau
        As for :func:`pointing_game`.
    k : int, optional
        Number of peaks; the number of boxes by default.
    nms_radius : float, optional
        Minimum distance between peaks (non-maximum suppression); ``tau`` by default,
        so that two peaks never stand for the same spot.

    Returns
    -------
    float or None
        Hit objects / objects, or None when there are no boxes. With one box and the
        default ``k`` it equals the Pointing Game's outcome (1.0 or 0.0).

    Examples
    --------
    >>> saliency = np.zeros((50, 50)); saliency[5, 5] = 1.0; saliency[5, 8] = 0.9
    >>> saliency[40, 40] = 0.5
    >>> objects_hit_fraction(saliency, [(0, 0, 6, 6), (38, 38, 42, 42)], tau=4)
    1.0
    >>> objects_hit_fraction(saliency, [(0, 0, 6, 6), (38, 38, 42, 42)], tau=4, nms_radius=1)
    0.5
    """
    tau = _check_tau(tau)
    values = _as_map(saliency)
    whole = _as_boxes(boxes, values.shape)
    if len(whole) == 0:
        return None
    peaks = top_peaks(
        values, len(whole) if k is None else k, tau if nms_radius is None else nms_radius
    )
    hit = np.zeros(len(whole), dtype=bool)
    for peak in peaks:
        hit |= squared_distances(peak, whole) < tau * tau
    return float(hit.mean())


def pointing_accuracy(outcomes: Iterable[bool | None]) -> float | None:
    """Pointing Game accuracy ``T / (T + F)`` (eq. 17); images without boxes (None) skipped.

    >>> pointing_accuracy([True, False, None, True, True])
    0.75
    >>> pointing_accuracy([None]) is None
    True
    """
    counted = [outcome for outcome in outcomes if outcome is not None]
    return sum(counted) / len(counted) if counted else None
