"""The engine's contract: shapes, ranges, batching, options, errors, and a model left untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from iqgate.errors import SaliencyError
from iqgate.explain import METHODS, explain, explain_many
from iqgate.explain.normgrad import combine_layer_maps
from iqgate.explain.postprocess import gaussian_smooth, minmax
from iqgate_testkit.tiny_cnn import TinyCnn, images

NORMGRAD = [m for m in METHODS if m.startswith("normgrad")]


def test_methods_are_the_papers_eight():
    assert METHODS == (
        "input-x-grad",
        "guided-backprop",
        "gradcam",
        "guided-gradcam",
        "normgrad-bias",
        "normgrad-scaling",
        "normgrad-conv1x1",
        "normgrad-conv3x3",
    )


@pytest.mark.parametrize("arch_fixture", ["resnet18", "efficientnet_b0"])
def test_every_map_is_float32_in_unit_range_at_input_size(request, arch_fixture):
    model = request.getfixturevalue(arch_fixture)
    x = images(2, 48, 72)
    maps = explain_many(model, x, METHODS, smooth_sigma=1.0)
    assert list(maps) == list(METHODS)
    for method, m in maps.items():
        assert m.shape == (2, 48, 72), method
        assert m.dtype == torch.float32, method
        assert m.device == x.device
        assert float(m.min()) == 0.0 and float(m.max()) == 1.0, method


@pytest.mark.parametrize("arch_fixture", ["resnet18", "efficientnet_b0"])
def test_a_batch_explained_at_once_equals_each_image_alone(request, arch_fixture):
    model = request.getfixturevalue(arch_fixture)
    x = images(3, 64, 64, seed=3)
    together = explain_many(model, x, METHODS, target=1)
    for i in range(3):
        alone = explain_many(model, x[i : i + 1], METHODS, target=1)
        for method in METHODS:
            torch.testing.assert_close(
                together[method][i : i + 1], alone[method], atol=2e-4, rtol=1e-3
            )


def test_explain_many_equals_explain_per_method(resnet18):
    x = images(2, 64, 64)
    many = explain_many(resnet18, x, METHODS, layers="single", smooth_sigma=1.0)
    for method in METHODS:
        one = explain(resnet18, x, method, layers="single", smooth_sigma=1.0)
        torch.testing.assert_close(many[method], one, atol=1e-5, rtol=1e-5)


def test_model_is_left_exactly_as_it_was():
    torch.manual_seed(0)
    model = TinyCnn()
    model.train()
    model.stem.eval()
    model.head.weight.requires_grad_(False)
    before = copy.deepcopy(model.state_dict())
    modes = {name: m.training for name, m in model.named_modules()}
    explain_many(model, images(2, 16, 16), METHODS, layers=["block"])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert not model.head.weight.requires_grad and model.head.bias.requires_grad
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert not module._backward_hooks
    assert all(p.grad is None for p in model.parameters())


def test_hooks_are_removed_when_the_call_fails():
    model = TinyCnn().eval()
    with pytest.raises(ValueError, match="out of range"):
        explain_many(model, images(1, 16, 16), METHODS, layers=["block"], target=7)
    assert all(not m._forward_hooks for m in model.modules())


def test_works_under_an_outer_no_grad(resnet18):
    x = images(1, 64, 64)
    with torch.no_grad():
        inside = explain(resnet18, x, "normgrad-conv3x3")
    torch.testing.assert_close(inside, explain(resnet18, x, "normgrad-conv3x3"))


def test_constant_image_gives_no_nan(resnet18):
    x = torch.full((2, 3, 32, 32), 0.25)
    for method, m in explain_many(resnet18, x, METHODS, smooth_sigma=1.0).items():
        assert torch.isfinite(m).all(), method
        assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0, method


def test_targets_as_int_tensor_and_predicted(resnet18):
    x = images(2, 64, 64)
    predicted = resnet18(x).argmax(1)
    by_default = explain(resnet18, x, "gradcam")
    torch.testing.assert_close(by_default, explain(resnet18, x, "gradcam", target=predicted))
    other = 1 - predicted
    assert not torch.allclose(by_default, explain(resnet18, x, "gradcam", target=other))


def test_inplace_activation_after_a_recorded_layer_gives_the_same_maps():
    torch.manual_seed(0)
    plain = TinyCnn(inplace=False).eval()
    inplace = TinyCnn(inplace=True).eval()
    inplace.load_state_dict(plain.state_dict())
    x = images(2, 16, 16)
    for method in NORMGRAD:
        torch.testing.assert_close(
            explain(inplace, x, method, layers=["stem", "block"]),
            explain(plain, x, method, layers=["stem", "block"]),
        )


def test_single_and_combined_presets_differ_and_explicit_lists_work(resnet18):
    x = images(1, 64, 64)
    single = explain(resnet18, x, "normgrad-conv1x1", layers="single")
    assert torch.equal(single, explain(resnet18, x, "normgrad-conv1x1", layers=["layer4.1"]))
    assert not torch.allclose(single, explain(resnet18, x, "normgrad-conv1x1", layers="combined"))


def test_bf16_autocast_returns_float32_maps(resnet18):
    x = images(1, 64, 64)
    m = explain(resnet18, x, "normgrad-conv3x3", autocast=torch.bfloat16)
    assert m.dtype == torch.float32 and torch.isfinite(m).all()


def test_geomean_ignores_each_layers_scale_and_product_is_min_max_product():
    a = torch.rand(2, 8, 8) + 0.1
    b = torch.rand(2, 8, 8) + 0.1
    geo = minmax(combine_layer_maps([a, b], "geomean"))
    torch.testing.assert_close(geo, minmax(combine_layer_maps([1000 * a, b], "geomean")))
    torch.testing.assert_close(
        geo,
        minmax(
            torch.sqrt(
                (a + 1e-6 * a.amax((1, 2), keepdim=True))
                * (b + 1e-6 * b.amax((1, 2), keepdim=True))
            )
        ),
    )
    torch.testing.assert_close(
        minmax(combine_layer_maps([a, b], "product")), minmax(minmax(a) * minmax(b))
    )


def test_a_zero_layer_map_makes_the_geomean_zero_not_nan():
    a = torch.rand(1, 4, 4)
    combined = combine_layer_maps([a, torch.zeros(1, 4, 4)], "geomean")
    assert torch.equal(minmax(combined), torch.zeros(1, 4, 4))


def test_minmax_of_a_constant_map_is_zeros():
    assert torch.equal(minmax(torch.full((2, 3, 3), 5.0)), torch.zeros(2, 3, 3))


def test_gaussian_smoothing_keeps_constants_and_the_peak():
    assert torch.allclose(
        gaussian_smooth(torch.full((1, 20, 20), 3.0), 1.0), torch.full((1, 20, 20), 3.0)
    )
    spike = torch.zeros(1, 21, 21)
    spike[0, 10, 7] = 1.0
    smoothed = gaussian_smooth(spike, 1.0)
    assert int(smoothed.flatten().argmax()) == 10 * 21 + 7
    assert smoothed.sum().item() == pytest.approx(1.0, rel=1e-5)
    assert smoothed[0, 10, 8].item() == pytest.approx(
        smoothed[0, 10, 7].item() * float(torch.exp(torch.tensor(-0.5))), rel=1e-4
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": torch.rand(3, 32, 32)}, ValueError, r"\[B, 3, H, W\]"),
        ({"images": torch.zeros(1, 3, 32, 32, dtype=torch.uint8)}, TypeError, "floating-point"),
        ({"method": "lime"}, ValueError, "unknown saliency method"),
        ({"layers": ["layer9.9"]}, ValueError, "no layer 'layer9.9'"),
        ({"layers": ["layer4.l"]}, ValueError, "did you mean"),
        ({"layers": "middle"}, ValueError, "'single', 'combined'"),
        ({"combine": "mean"}, ValueError, "geomean"),
        ({"smooth_sigma": -1.0}, ValueError, "positive"),
        ({"target": 5}, ValueError, "out of range"),
        ({"target": torch.tensor([0.5])}, TypeError, "integer"),
        ({"target": torch.tensor([0, 1, 0])}, ValueError, "shape"),
    ],
)
def test_clear_errors_for_bad_arguments(resnet18, kwargs, error, match):
    call = {"images": images(1, 32, 32), "method": "normgrad-conv3x3"} | kwargs
    with pytest.raises(error, match=match):
        explain(resnet18, call.pop("images"), call.pop("method"), **call)


def test_a_model_without_presets_needs_explicit_layers(tiny_cnn):
    with pytest.raises(ValueError, match="needs a layer preset"):
        explain(tiny_cnn, images(1, 16, 16), "normgrad-conv3x3")
    assert explain(tiny_cnn, images(1, 16, 16), "gradcam", layers=["block"]).shape == (1, 16, 16)


def test_a_layer_that_runs_twice_is_refused():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.head = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.conv(self.conv(x)).mean((2, 3)))

    with pytest.raises(SaliencyError, match="ran 2 times"):
        explain(Twice(), images(1, 8, 8), "normgrad-bias", layers=["conv"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_maps_match_cpu_maps(resnet18):
    x = images(2, 64, 64)
    cpu = explain_many(resnet18, x, METHODS, target=1)
    gpu_model = copy.deepcopy(resnet18).cuda()
    gpu = explain_many(gpu_model, x.cuda(), METHODS, target=1)
    for method in METHODS:
        assert gpu[method].device.type == "cuda"
        torch.testing.assert_close(gpu[method].cpu(), cpu[method], atol=1e-3, rtol=1e-3)


def test_rounding_noise_on_a_constant_map_is_not_stretched_to_full_range():
    noisy = torch.full((1, 4, 4), 1000.0)
    noisy[0, 0, 0] += 1e-4
    assert torch.equal(minmax(noisy), torch.zeros(1, 4, 4))
    real = torch.full((1, 4, 4), 1000.0)
    real[0, 0, 0] += 1.0
    assert float(minmax(real).max()) == 1.0
