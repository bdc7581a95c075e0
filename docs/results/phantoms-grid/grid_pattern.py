#!/usr/bin/env python3
"""Where the regular grid of blobs in combined NormGrad maps comes from (issue 14, item 5).

For CXR phantoms at 256 px, a trained and a fully random ResNet-18, this measures how
much of each map's variance is periodic with the period of a layer's stride (the map
folded onto one period-by-period tile and tiled again; 0 = no grid, 1 = a pure grid),
for the raw per-layer NormGrad maps and their two factors (period 2 on their own grid:
the checkerboard that strided convolutions leave in gradients), each layer's map
upsampled to the input (period twice its stride), and
the combined map with the engine's bilinear upsampling beside bicubic and nearest.
A period the network does not have (37 px) is the null.

    .venv/bin/python docs/results/phantoms-grid/grid_pattern.py models/cxr-foreign-object
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

from iqgate import nets
from iqgate.data.phantom_dataset import PhantomDataset
from iqgate.explain.normgrad import box_sum_3x3, geometric_mean, normgrad_maps
from iqgate.packages import load_package

LAYERS = ("layer2.0", "layer3.0", "layer4.0", "layer4.1")
STRIDES = {"layer2.0": 8, "layer3.0": 16, "layer4.0": 32, "layer4.1": 32}
SIZE = 256


def periodic_fraction(maps: np.ndarray, period: int) -> float:
    """Mean over maps [B, H, W] of the variance share of their ``period``-periodic part,
    measured on each map's ranks (what a min-max colour map shows in flat regions)."""
    shares = []
    for m in maps:
        m = np.argsort(np.argsort(m.ravel())).reshape(m.shape).astype(np.float64)
        h, w = (m.shape[0] // period) * period, (m.shape[1] // period) * period
        m = m[:h, :w]
        tile = m.reshape(h // period, period, w // period, period).mean(axis=(0, 2))
        periodic = np.tile(tile, (h // period, w // period))
        shares.append(periodic.var() / max(m.var(), 1e-12))
    return float(np.mean(shares))


def raw_layer_maps(
    model: torch.nn.Module, images: torch.Tensor
) -> dict[str, dict[str, torch.Tensor]]:
    """Per layer at its own resolution, for class 1: NormGrad conv3x3 and its two factors,
    the gradient norm ||G_u|| and the activation patch norm ||P_u||."""
    captured: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: captured.__setitem__(name, out)
        )
        for name in LAYERS
    ]
    try:
        model.eval()
        logits = model(images)
        gradients = torch.autograd.grad(logits[:, 1].sum(), [captured[n] for n in LAYERS])
    finally:
        for hook in hooks:
            hook.remove()
    maps = {}
    for name, g in zip(LAYERS, gradients, strict=True):
        a = captured[name].detach()
        maps[name] = {
            "conv3x3": normgrad_maps(a, g, ["conv3x3"])["conv3x3"],
            "||G||": torch.linalg.vector_norm(g, dim=1),
            "||P||": box_sum_3x3(a.square().sum(dim=1)).clamp_min(0).sqrt(),
        }
    return maps


def report(title: str, model: torch.nn.Module, images: torch.Tensor) -> None:
    factors = raw_layer_maps(model, images)
    raw = {name: parts["conv3x3"] for name, parts in factors.items()}
    print(f"\n{title}")
    print("  raw per-layer maps, checkerboard (period 2 on the layer's grid): map, ||G||, ||P||")
    for name, parts in factors.items():
        shares = ", ".join(f"{periodic_fraction(m.numpy(), 2):.3f}" for m in parts.values())
        print(f"    {name:9s} {tuple(raw[name].shape[1:])}: {shares}")
    for mode in ("bilinear", "bicubic", "nearest"):
        kwargs = {} if mode == "nearest" else {"align_corners": False}
        up = [
            F.interpolate(m[:, None], size=(SIZE, SIZE), mode=mode, **kwargs)[:, 0].clamp_min(0)
            for m in raw.values()
        ]
        combined = geometric_mean(up).numpy()
        cells = ", ".join(
            f"{p} px {periodic_fraction(combined, p):.3f}" for p in (8, 16, 32, 37)
        )
        print(f"  combined (geomean), {mode:8s} upsampling: periodic share {cells}")
    up = {
        n: F.interpolate(m[:, None], size=(SIZE, SIZE), mode="bilinear")[:, 0].numpy()
        for n, m in raw.items()
    }
    print("  each layer upsampled (bilinear), periodic share at twice its stride / at 37 px:")
    for name, m in up.items():
        print(
            f"    {name:9s}: {periodic_fraction(m, 2 * STRIDES[name]):.3f} / "
            f"{periodic_fraction(m, 37):.3f}"
        )


def main() -> None:
    torch.manual_seed(0)
    data = PhantomDataset("cxr", 12, seed=9_090_909, size=SIZE, positive_fraction=1.0)
    images = torch.stack([data[i]["image"] for i in range(len(data))])
    trained, _ = load_package(sys.argv[1], torch.device("cpu"))
    report(f"trained: {sys.argv[1]}", trained, images)
    report("fully random ResNet-18 (He init)", nets.build("resnet18"), images)


if __name__ == "__main__":
    main()
