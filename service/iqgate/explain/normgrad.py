r"""NormGrad (Rebuffi et al.; paper section 3.5): spatial norms of virtual weight gradients.

A virtual identity layer inserted after the target layer, whose output A [C, h, w]
receives the upstream gradient G = dy/dA, has a weight gradient that is a sum of one
contribution per position u. NormGrad maps each position to that contribution's
Frobenius norm:

.. math::
    m^{bias}_u = \lVert G_u \rVert, \quad
    m^{scaling}_u = \lVert G_u \odot A_u \rVert, \quad
    m^{1\times1}_u = \lVert G_u \rVert \, \lVert A_u \rVert, \quad
    m^{3\times3}_u = \lVert G_u \rVert \, \lVert P_u \rVert

where P_u is the zero-padded 3 x 3 patch of A around u (9C values). The outer products
are never built: :math:`\lVert P_u \rVert^2` is a 3 x 3 box sum of the channel-summed
:math:`A^2`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from iqgate.explain.postprocess import minmax

NormGradVariant = Literal["bias", "scaling", "conv1x1", "conv3x3"]
VARIANTS: tuple[NormGradVariant, ...] = get_args(NormGradVariant)
Combine = Literal["geomean", "product"]
COMBINES: tuple[Combine, ...] = get_args(Combine)


def box_sum_3x3(values: torch.Tensor) -> torch.Tensor:
    """Sum of each zero-padded 3 x 3 neighbourhood of maps [B, h, w]."""
    summed = F.avg_pool2d(values[:, None], 3, stride=1, padding=1, count_include_pad=True)
    return summed[:, 0] * 9.0


def normgrad_maps(
    activation: torch.Tensor, gradient: torch.Tensor, variants: Iterable[NormGradVariant]
) -> dict[NormGradVariant, torch.Tensor]:
    """Per-layer NormGrad maps [B, h, w] for each variant, sharing the common norms.

    ``activation`` is the layer output A and ``gradient`` is dy/dA, both [B, C, h, w];
    both are promoted to float32.
    """
    a = activation.float()
    g = gradient.float()
    wanted = set(variants)
    maps: dict[NormGradVariant, torch.Tensor] = {}
    g_norm = torch.linalg.vector_norm(g, dim=1) if wanted - {"scaling"} else None
    if "bias" in wanted:
        maps["bias"] = g_norm
    if "scaling" in wanted:
        maps["scaling"] = torch.linalg.vector_norm(g * a, dim=1)
    a_squared = a.square().sum(dim=1) if wanted & {"conv1x1", "conv3x3"} else None
    if "conv1x1" in wanted:
        maps["conv1x1"] = g_norm * a_squared.sqrt()
    if "conv3x3" in wanted:
        maps["conv3x3"] = g_norm * box_sum_3x3(a_squared).clamp_min(0).sqrt()
    return {variant: maps[variant] for variant in VARIANTS if variant in wanted}


def geometric_mean(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Geometric mean of layer maps [B, H, W], each shifted by 1e-6 of its own maximum.

    :math:`\exp\big(\frac{1}{J}\sum_j \log(m_j + \epsilon_j)\big)`,
    :math:`\epsilon_j = 10^{-6} \max m_j` per image, so that each layer's scale cancels
    out after the final min-max. A layer map that is zero everywhere gives zeros.
    """
    total = torch.zeros_like(maps[0])
    for layer_map in maps:
        eps = 1e-6 * layer_map.flatten(1).amax(1).view(-1, 1, 1)
        total += torch.log(layer_map + eps)
    return torch.exp(total / len(maps))


def normalised_product(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Product of per-layer min-max normalised maps [B, H, W] (the authors' code)."""
    product = minmax(maps[0])
    for layer_map in maps[1:]:
        product = product * minmax(layer_map)
    return product


def combine_layer_maps(maps: Sequence[torch.Tensor], combine: Combine) -> torch.Tensor:
    """Combine maps that are already upsampled to the input size (before the final min-max)."""
    if combine == "geomean":
        return geometric_mean(maps)
    if combine == "product":
        return normalised_product(maps)
    raise ValueError(f"unknown combine {combine!r}; choose one of {COMBINES}")
