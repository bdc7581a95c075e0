"""Content-free pointers: where a saliency map would point if it knew nothing of any model.

A Pointing Game score means something only beside what such pointers reach on the same
images and boxes (shared/DESIGN.md, "Phantoms"). Each pointer is written as a map whose
first maximum is the point, so it is scored by the same
:func:`~iqgate.study.pointing.pointing_game` as every saliency method:

- ``image centre``: the centre pixel;
- ``brightest pixel``: the maximum of the image smoothed with a Gaussian of sigma
  ``tau / 5``;
- ``densest edges``: the maximum of the gradient magnitude smoothed with sigma ``tau``;
- ``best fixed point``: the one pixel that hits the most boxes of the whole set (an
  oracle fitted on the scored images, so an upper bound for any fixed point).

The uniform chance of a set is the mean, over images with boxes, of the fraction of the
image within ``tau`` of a box: what a pointer drawn uniformly at random scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from iqgate.study.pointing import Boxes, _as_boxes, _check_tau, pointing_game

CONTENT_FREE_POINTERS = ("image centre", "brightest pixel", "densest edges")
"""The pointers that look at one image only, in table order."""

BEST_FIXED_POINT = "best fixed point"


def within_tau(boxes: Boxes, shape: tuple[int, int], tau: float) -> np.ndarray:
    """Boolean map of the pixels strictly within ``tau`` of a pixel of any box."""
    tau = _check_tau(tau)
    whole = _as_boxes(boxes, shape)
    rows = np.arange(shape[0])[:, None, None]
    columns = np.arange(shape[1])[None, :, None]
    dx = np.maximum(np.maximum(whole[:, 0] - columns, columns - whole[:, 2]), 0)
    dy = np.maximum(np.maximum(whole[:, 1] - rows, rows - whole[:, 3]), 0)
    return ((dx.astype(np.float64) ** 2 + dy**2) < tau * tau).any(axis=2)


def uniform_chance(box_sets: Sequence[Boxes], shape: tuple[int, int], tau: float) -> float | None:
    """Mean fraction of the image within ``tau`` of a box, over images with boxes."""
    fractions = [within_tau(boxes, shape, tau).mean() for boxes in box_sets if len(boxes)]
    return float(np.mean(fractions)) if fractions else None


def centre_map(shape: tuple[int, int]) -> np.ndarray:
    """A map whose first maximum is the image centre ``(H // 2, W // 2)``."""
    saliency = np.zeros(shape, dtype=np.float32)
    saliency[shape[0] // 2, shape[1] // 2] = 1.0
    return saliency


def brightest_map(image: np.ndarray, tau: float) -> np.ndarray:
    """The image smoothed with a Gaussian of sigma ``tau / 5``."""
    return ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), _check_tau(tau) / 5)


def densest_edges_map(image: np.ndarray, tau: float) -> np.ndarray:
    """The gradient magnitude (Sobel) of the image smoothed with a Gaussian of sigma ``tau``."""
    grey = np.asarray(image, dtype=np.float32)
    magnitude = np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))
    return ndimage.gaussian_filter(magnitude, _check_tau(tau))


def content_free_maps(image: np.ndarray, tau: float) -> dict[str, np.ndarray]:
    """The maps of :data:`CONTENT_FREE_POINTERS` for one image [H, W] (model input frame)."""
    return {
        "image centre": centre_map(image.shape),
        "brightest pixel": brightest_map(image, tau),
        "densest edges": densest_edges_map(image, tau),
    }


def best_fixed_point_map(
    box_sets: Sequence[Boxes], shape: tuple[int, int], tau: float
) -> np.ndarray:
    """How many images of the set each pixel would hit; its first maximum is the best point."""
    counts = np.zeros(shape, dtype=np.float64)
    for boxes in box_sets:
        if len(boxes):
            counts += within_tau(boxes, shape, tau)
    return counts


def score_pointers(
    images: Sequence[np.ndarray], box_sets: Sequence[Boxes], tau: float
) -> dict[str, dict[str, float]]:
    """Hits, images and Pointing Game of every pointer on the images with boxes.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        Grey images [H, W] as the model sees them (same frame as the boxes).
    box_sets : sequence of array-like
        Each image's boxes; images without boxes are skipped, as the Pointing Game does.
    tau : float
        Tolerance in pixels.

    Returns
    -------
    dict
        ``{pointer: {"hits", "images", "pg"}}`` for :data:`CONTENT_FREE_POINTERS` and
        :data:`BEST_FIXED_POINT`, and ``"uniform chance"`` as ``{"pg": chance}``.
    """
    chosen = [(image, boxes) for image, boxes in zip(images, box_sets, strict=True) if len(boxes)]
    if not chosen:
        return {}
    shape = chosen[0][0].shape
    hits = {name: 0 for name in (*CONTENT_FREE_POINTERS, BEST_FIXED_POINT)}
    for image, boxes in chosen:
        for name, saliency in content_free_maps(image, tau).items():
            hits[name] += bool(pointing_game(saliency, boxes, tau))
    fixed = best_fixed_point_map([boxes for _, boxes in chosen], shape, tau)
    hits[BEST_FIXED_POINT] = sum(bool(pointing_game(fixed, boxes, tau)) for _, boxes in chosen)
    n = len(chosen)
    scores: dict[str, dict[str, float]] = {
        name: {"hits": count, "images": n, "pg": count / n} for name, count in hits.items()
    }
    scores["uniform chance"] = {"pg": float(uniform_chance([b for _, b in chosen], shape, tau))}
    return scores
