"""Throughput of the saliency engine beside its cost floor and two popular peers.

Every figure is images per second on one model, batch and device, measured in the same
run as a plain forward pass and a forward+backward pass to the input (the cost floor
of any gradient saliency map; shared/ANCHORS.md). Ratios to forward+backward are what
the targets are stated in.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from iqgate import nets
from iqgate.explain import METHODS, explain, explain_many

FORWARD = "forward"
FORWARD_BACKWARD = "fwd+bwd (floor)"
EXPLAIN_MANY = "explain_many (all 8)"
CAPTUM_GRADCAM = "captum LayerGradCam"
PYTORCH_GRAD_CAM = "pytorch-grad-cam GradCAM"


@dataclass(frozen=True)
class SpeedCase:
    """One benchmark configuration."""

    arch: str
    size: int
    batch: int
    device: str = "cpu"
    bf16: bool = False


@dataclass(frozen=True)
class SpeedResult:
    """Median images/s of one measured call, with its ratio to forward+backward."""

    case: SpeedCase
    name: str
    images_per_s: float
    speed_vs_floor: float

    @property
    def time_vs_floor(self) -> float:
        """Time per image relative to forward+backward (1 / speed ratio)."""
        return 1.0 / self.speed_vs_floor

    def as_dict(self) -> dict[str, object]:
        """JSON-ready record."""
        return asdict(self) | {"time_vs_floor": self.time_vs_floor}


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    call: Callable[[], object], device: torch.device, *, warmup: int, repeats: int
) -> float:
    """Median wall time of ``call`` in seconds after ``warmup`` unmeasured calls."""
    for _ in range(warmup):
        call()
    _synchronise(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        _synchronise(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _floor_calls(
    model: nn.Module, x: torch.Tensor, autocast: torch.dtype | None
) -> dict[str, Callable[[], object]]:
    def context() -> object:
        return (
            torch.autocast(device_type=x.device.type, dtype=autocast) if autocast else nullcontext()
        )

    def forward() -> object:
        with torch.no_grad(), context():
            return model(x)

    def forward_backward() -> object:
        xg = x.detach().requires_grad_(True)
        with context():
            logits = model(xg)
        score = logits.float().gather(1, logits.argmax(1, keepdim=True)).sum()
        return torch.autograd.grad(score, xg)

    return {FORWARD: forward, FORWARD_BACKWARD: forward_backward}


def _peer_calls(model: nn.Module, x: torch.Tensor) -> dict[str, Callable[[], object]]:
    """Grad-CAM of Captum and pytorch-grad-cam, where installed."""
    arch = nets.architecture_of(model)
    if arch is None:
        return {}
    layer = model.get_submodule(nets.LAYERS[arch]["gradcam"])
    calls: dict[str, Callable[[], object]] = {}
    try:
        from captum.attr import LayerGradCam
    except ImportError:
        pass
    else:
        captum_cam = LayerGradCam(model, layer)

        def captum_call() -> object:
            cam = captum_cam.attribute(x, target=1, relu_attributions=True)
            return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)

        calls[CAPTUM_GRADCAM] = captum_call
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        pass
    else:
        targets = [ClassifierOutputTarget(1)] * x.shape[0]

        def grad_cam_call() -> object:
            with GradCAM(model=model, target_layers=[layer]) as cam:
                return cam(input_tensor=x, targets=targets)

        calls[PYTORCH_GRAD_CAM] = grad_cam_call
    return calls


def measure_case(
    case: SpeedCase, *, warmup: int = 1, repeats: int = 3, peers: bool = True, seed: int = 0
) -> list[SpeedResult]:
    """Measure every method, ``explain_many`` and the floors for one case."""
    device = torch.device(case.device)
    torch.manual_seed(seed)
    model = nets.build(case.arch).to(device)
    autocast = torch.bfloat16 if case.bf16 else None
    x = torch.randn(case.batch, 3, case.size, case.size, device=device)
    if case.bf16:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    calls = _floor_calls(model, x, autocast)
    for method in METHODS:
        calls[method] = lambda m=method: explain(model, x, m, autocast=autocast)
    calls[EXPLAIN_MANY] = lambda: explain_many(model, x, METHODS, autocast=autocast)
    if peers and not case.bf16:
        calls |= _peer_calls(model, x)
    seconds = {
        name: time_call(call, device, warmup=warmup, repeats=repeats)
        for name, call in calls.items()
    }
    floor = seconds[FORWARD_BACKWARD]
    return [SpeedResult(case, name, case.batch / s, floor / s) for name, s in seconds.items()]


def render_table(results: list[SpeedResult]) -> str:
    """Markdown table: one row per case and call, with ratios to forward+backward."""
    lines = [
        "| model, input, batch, device | call | images/s | speed vs fwd+bwd | time vs fwd+bwd |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        c = r.case
        label = f"{c.arch}, {c.size}, {c.batch}, {c.device}{' bf16' if c.bf16 else ''}"
        lines.append(
            f"| {label} | {r.name} | {r.images_per_s:.1f} | {r.speed_vs_floor:.2f} "
            f"| {r.time_vs_floor:.2f} |"
        )
    return "\n".join(lines)


def check_targets(results: list[SpeedResult]) -> list[str]:
    """The issue's speed targets, each as a line saying met or missed with the figure."""
    lines = []
    for r in results:
        arch = r.case.arch
        if r.name == "normgrad-conv3x3":
            need = 0.85 if arch.startswith("efficientnet") else 1.0
            verdict = "met" if r.speed_vs_floor >= need else "MISSED"
            lines.append(
                f"{arch}: NormGrad combined speed vs fwd+bwd {r.speed_vs_floor:.2f} "
                f"(target >= {need}) {verdict}"
            )
        if r.name == EXPLAIN_MANY:
            verdict = "met" if r.time_vs_floor <= 2.5 else "MISSED"
            lines.append(
                f"{arch}: all eight methods time vs fwd+bwd {r.time_vs_floor:.2f} "
                f"(target <= 2.5) {verdict}"
            )
    return lines
