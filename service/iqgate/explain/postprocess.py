"""Map post-processing shared by every saliency method: upsampling, smoothing, min-max."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling (``align_corners=False``) of maps [B, h, w] to ``size``."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def gaussian_kernel_1d(sigma: float, radius: int, device: torch.device) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``2 * radius + 1`` taps."""
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of maps [B, H, W] with reflect padding (paper section 4.3).

    The kernel spans ``2 * round(5 * sigma) + 1`` taps (11 x 11 at the paper's
    sigma of 1.0, as in the authors' code), shortened where the map is smaller.
    """
    height, width = maps.shape[-2:]
    radius = min(max(1, round(5 * sigma)), height - 1, width - 1)
    if radius < 1:
        return maps
    kernel = gaussian_kernel_1d(sigma, radius, maps.device)
    x = F.pad(maps[:, None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x[:, 0]


RELATIVE_RANGE_FLOOR = 1e-6
"""A map whose range is below this share of its magnitude is constant up to rounding."""


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map of [B, H, W] to [0, 1]; a constant map becomes zeros.

    A map whose range is within float rounding of constant (below
    :data:`RELATIVE_RANGE_FLOOR` of its largest magnitude) also becomes zeros, rather
    than rounding noise stretched to the full range.
    """
    flat = maps.flatten(1)
    low = flat.amin(1).view(-1, 1, 1)
    high = flat.amax(1).view(-1, 1, 1)
    span = high - low
    magnitude = torch.maximum(high.abs(), low.abs())
    has_range = (span > 0) & (span > RELATIVE_RANGE_FLOOR * magnitude)
    scaled = (maps - low) / torch.where(has_range, span, torch.ones_like(span))
    return torch.where(has_range, scaled, torch.zeros_like(scaled))


def finish(maps: torch.Tensor, smooth_sigma: float | None) -> torch.Tensor:
    """Optional smoothing, then the final per-image min-max (float32)."""
    maps = maps.float()
    if smooth_sigma is not None:
        maps = gaussian_smooth(maps, smooth_sigma)
    return minmax(maps)


def check_sigma(smooth_sigma: float | None) -> None:
    """Reject a smoothing sigma that is not None or a positive finite number."""
    if smooth_sigma is None:
        return
    if isinstance(smooth_sigma, bool) or not isinstance(smooth_sigma, (int, float)):
        raise TypeError(f"smooth_sigma must be None or a number, got {smooth_sigma!r}")
    if not math.isfinite(smooth_sigma) or smooth_sigma <= 0:
        raise ValueError(f"smooth_sigma must be positive (the paper uses 1.0), got {smooth_sigma}")
