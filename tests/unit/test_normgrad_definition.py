"""Each NormGrad variant equals the per-position weight gradient of a real identity layer.

The reference inserts, after the target layer, an identity layer of the variant's kind
whose weights are untied per image and per position, backpropagates, and reads the
Frobenius norm of each position's weight gradient: exactly the contribution that a
tied layer sums over positions (checked too, against a real ``nn.Conv2d``).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from iqgate.explain import normgrad_layer_maps
from iqgate.explain.normgrad import box_sum_3x3
from iqgate_testkit.tiny_cnn import images


class UntiedIdentity(nn.Module):
    """Identity layer of one NormGrad kind with its own weights at every (image, position)."""

    def __init__(self, variant: str, shape: torch.Size) -> None:
        super().__init__()
        batch, channels, height, width = shape
        self.variant = variant
        self.spatial = (height, width)
        if variant == "bias":
            self.weight = nn.Parameter(torch.zeros(batch, channels, height, width))
        elif variant == "scaling":
            self.weight = nn.Parameter(torch.ones(batch, channels, height, width))
        else:
            taps = 1 if variant == "conv1x1" else 9
            eye = torch.zeros(channels, channels * taps)
            centre = taps // 2
            eye[torch.arange(channels), torch.arange(channels) * taps + centre] = 1.0
            self.weight = nn.Parameter(eye.expand(batch, height * width, -1, -1).clone())

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if self.variant == "bias":
            return a + self.weight
        if self.variant == "scaling":
            return a * self.weight
        batch, channels, height, width = a.shape
        if self.variant == "conv1x1":
            patches = a.flatten(2)  # [B, C, hw]
        else:
            patches = F.unfold(a, 3, padding=1)  # [B, 9C, hw], channel-major like conv weights
        out = torch.einsum("bpoi,bip->bop", self.weight, patches)
        return out.reshape(batch, channels, height, width)

    def position_norms(self) -> torch.Tensor:
        grad = self.weight.grad
        assert grad is not None
        if self.variant in ("bias", "scaling"):
            return torch.linalg.vector_norm(grad, dim=1)
        batch = grad.shape[0]
        return torch.linalg.matrix_norm(grad).reshape(batch, *self.spatial)


def reference_maps(
    model: nn.Module, x: torch.Tensor, layer: str, variant: str, target: int
) -> torch.Tensor:
    """Per-position weight-gradient norms of an identity layer inserted after ``layer``."""
    recorded: dict[str, torch.Size] = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda m, i, o: recorded.update(shape=o.shape)
    )
    with torch.no_grad():
        model(x)
    handle.remove()
    shape = recorded["shape"]
    probe = copy.deepcopy(model)
    identity = UntiedIdentity(variant, shape).to(x.dtype)
    parent_name, _, child = layer.rpartition(".")
    parent = probe.get_submodule(parent_name) if parent_name else probe
    setattr(parent, child, nn.Sequential(getattr(parent, child), identity))
    probe(x)[:, target].sum().backward()
    return identity.position_norms()


@pytest.mark.parametrize("variant", ["bias", "scaling", "conv1x1", "conv3x3"])
def test_normgrad_equals_identity_layer_weight_gradient_tiny_cnn(tiny_cnn, variant):
    x = images(3, 16, 12)
    expected = reference_maps(tiny_cnn, x, "block", variant, target=2)
    got = normgrad_layer_maps(tiny_cnn, x, variant, layers=["block"], target=2)["block"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("variant", ["bias", "scaling", "conv1x1", "conv3x3"])
def test_normgrad_equals_identity_layer_weight_gradient_resnet(resnet18, variant):
    x = images(2, 64, 48)
    model = copy.deepcopy(resnet18).double()
    expected = reference_maps(model, x.double(), "layer3.0", variant, target=1)
    got = normgrad_layer_maps(model, x.double(), variant, layers=["layer3.0"], target=1)
    torch.testing.assert_close(got["layer3.0"], expected.float(), rtol=1e-5, atol=1e-9)


def test_per_position_contributions_sum_to_the_tied_conv3x3_weight_gradient(tiny_cnn):
    x = images(2, 12, 12)
    probe = copy.deepcopy(tiny_cnn)
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[torch.arange(8), torch.arange(8), 1, 1] = 1.0
    probe.block = nn.Sequential(probe.block, conv)
    probe(x)[:, 0].sum().backward()

    untied = copy.deepcopy(tiny_cnn)
    identity = UntiedIdentity("conv3x3", torch.Size([2, 8, 6, 6]))
    untied.block = nn.Sequential(untied.block, identity)
    untied(x)[:, 0].sum().backward()
    summed = identity.weight.grad.sum(dim=(0, 1)).reshape(8, 8, 3, 3)
    torch.testing.assert_close(summed, conv.weight.grad, rtol=1e-5, atol=1e-6)


def test_box_sum_3x3_is_the_zero_padded_patch_sum():
    values = torch.rand(2, 5, 7)
    expected = F.unfold(values[:, None], 3, padding=1).sum(1).reshape(2, 5, 7)
    torch.testing.assert_close(box_sum_3x3(values), expected)
