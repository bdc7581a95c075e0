r"""Grad-CAM (Selvaraju et al.; paper section 3.3).

.. math::
    \alpha_k = \frac{1}{hw} \sum_u G_{k,u}, \qquad
    m_u = \mathrm{ReLU}\Big(\sum_k \alpha_k A_{k,u}\Big)

computed at the last convolutional block and upsampled bilinearly to the input.
"""

from __future__ import annotations

import torch


def gradcam_map(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM map [B, h, w] from a layer's output A and dy/dA, both [B, C, h, w]."""
    activation = activation.float()
    alpha = gradient.float().mean(dim=(2, 3), keepdim=True)
    return torch.relu((alpha * activation).sum(dim=1))
