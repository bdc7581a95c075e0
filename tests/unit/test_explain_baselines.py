"""The baseline methods agree with Captum, and SiLU guided backprop with paper eq. 8."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from iqgate import nets
from iqgate.explain import explain
from iqgate.explain.guided import silu_derivative
from iqgate.explain.postprocess import minmax
from iqgate_testkit.tiny_cnn import images

captum_attr = pytest.importorskip("captum.attr")

TARGET = 1


def channel_abs_sum(attributions: torch.Tensor) -> torch.Tensor:
    return attributions.abs().sum(dim=1)


def channel_positive_sum(attributions: torch.Tensor) -> torch.Tensor:
    return attributions.clamp_min(0).sum(dim=1)


@pytest.fixture(scope="module", params=["resnet18", "resnet50"])
def resnet(request) -> nn.Module:
    torch.manual_seed(1)
    return nets.build(request.param)


def test_gradcam_agrees_with_captum(resnet):
    x = images(2, 64, 80)
    layer = resnet.get_submodule(nets.LAYERS[resnet.iqgate_arch]["gradcam"])
    cam = captum_attr.LayerGradCam(resnet, layer).attribute(
        x, target=TARGET, relu_attributions=True
    )
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    ours = explain(resnet, x, "gradcam", target=TARGET)
    torch.testing.assert_close(ours, minmax(cam.detach()), rtol=1e-4, atol=1e-5)


def test_input_x_grad_agrees_with_captum(resnet):
    x = images(2, 64, 64)
    reference = captum_attr.InputXGradient(resnet).attribute(
        x.clone().requires_grad_(True), target=TARGET
    )
    ours = explain(resnet, x, "input-x-grad", target=TARGET)
    torch.testing.assert_close(
        ours, minmax(channel_abs_sum(reference.detach())), rtol=1e-4, atol=1e-5
    )


def test_guided_backprop_agrees_with_captum(resnet):
    x = images(2, 64, 64)
    reference = captum_attr.GuidedBackprop(copy.deepcopy(resnet)).attribute(
        x.clone().requires_grad_(True), target=TARGET
    )
    ours = explain(resnet, x, "guided-backprop", target=TARGET)
    torch.testing.assert_close(
        ours, minmax(channel_positive_sum(reference.detach())), rtol=1e-4, atol=1e-5
    )
    xp = x.clone().requires_grad_(True)
    resnet(xp)[:, TARGET].sum().backward()
    plain = minmax(channel_positive_sum(xp.grad))
    assert (ours - plain).abs().max() > 0.05, "guided backprop must differ from the plain gradient"


def test_guided_gradcam_agrees_with_captum(resnet):
    x = images(2, 64, 64)
    model = copy.deepcopy(resnet)
    layer = model.get_submodule(nets.LAYERS[resnet.iqgate_arch]["gradcam"])
    reference = captum_attr.GuidedGradCam(model, layer).attribute(
        x.clone().requires_grad_(True), target=TARGET, interpolate_mode="bilinear"
    )
    ours = explain(resnet, x, "guided-gradcam", target=TARGET)
    torch.testing.assert_close(
        ours, minmax(channel_positive_sum(reference.detach())), rtol=1e-4, atol=1e-5
    )


def test_guided_backprop_leaves_plain_gradients_of_later_calls_untouched(resnet):
    x = images(1, 64, 64).requires_grad_(True)
    resnet(x)[:, TARGET].sum().backward()
    plain = x.grad.clone()
    explain(resnet, x.detach(), "guided-backprop", target=TARGET)
    x.grad = None
    resnet(x)[:, TARGET].sum().backward()
    torch.testing.assert_close(x.grad, plain)


class GuidedSiluFunction(torch.autograd.Function):
    """Paper eq. 8 written out: g_in = silu'(h) * silu'(g) * g."""

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h)
        return F.silu(h)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        (h,) = ctx.saved_tensors
        return silu_derivative(h) * silu_derivative(g) * g


class GuidedSilu(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return GuidedSiluFunction.apply(h)


def replace_silu(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.SiLU):
            setattr(module, name, GuidedSilu())
        else:
            replace_silu(child)


def test_silu_guided_backprop_follows_equation_8(efficientnet_b0):
    x = images(2, 64, 64)
    reference_model = copy.deepcopy(efficientnet_b0)
    replace_silu(reference_model)
    xr = x.clone().requires_grad_(True)
    reference_model(xr)[:, TARGET].sum().backward()
    expected = minmax(channel_positive_sum(xr.grad))
    ours = explain(efficientnet_b0, x, "guided-backprop", target=TARGET)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
