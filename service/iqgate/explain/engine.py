"""Public entry points of the saliency engine: ``explain`` and ``explain_many``.

Every method of the paper on a batch, with the passes shared between methods (see
:mod:`iqgate.explain.passes`); maps are float32 [B, H, W] in [0, 1] at the input size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from iqgate.explain.gradcam import gradcam_map
from iqgate.explain.guided import guided_backprop_map
from iqgate.explain.normgrad import (
    COMBINES,
    VARIANTS,
    Combine,
    NormGradVariant,
    combine_layer_maps,
    normgrad_maps,
)
from iqgate.explain.passes import PassPlan, Target, run_passes
from iqgate.explain.postprocess import check_sigma, finish, upsample
from iqgate.nets import LAYERS, architecture_of

METHODS: tuple[str, ...] = (
    "input-x-grad",
    "guided-backprop",
    "gradcam",
    "guided-gradcam",
    "normgrad-bias",
    "normgrad-scaling",
    "normgrad-conv1x1",
    "normgrad-conv3x3",
)
"""The saliency methods of the paper (section 3), by name."""

NORMGRAD_METHODS: dict[str, NormGradVariant] = {f"normgrad-{v}": v for v in VARIANTS}
Layers = str | Sequence[str]
LAYER_PRESETS = ("single", "combined")


@dataclass(frozen=True)
class LayerChoice:
    """The layers NormGrad combines and the layer Grad-CAM reads."""

    normgrad: tuple[str, ...]
    gradcam: str


def resolve_layers(model: nn.Module, layers: Layers) -> LayerChoice:
    """Turn ``layers`` ("single", "combined" or module names) into concrete module names.

    Grad-CAM reads the preset "gradcam" layer; for a model without a preset it reads
    the last of the explicitly named layers.
    """
    arch = architecture_of(model)
    preset = LAYERS.get(arch) if arch is not None else None
    if isinstance(layers, str):
        if layers not in LAYER_PRESETS:
            raise ValueError(
                f"layers={layers!r}: use 'single', 'combined' or a list of module names"
            )
        if preset is None:
            raise ValueError(
                f"layers={layers!r} needs a layer preset, and this model has none "
                f"(architecture {arch!r}; presets exist for {sorted(LAYERS)}); build it with "
                "iqgate.nets.build or pass layers=[module names]"
            )
        return LayerChoice(tuple(preset[layers]), preset["gradcam"])
    names = tuple(layers)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"layers must be a non-empty list of module names, got {layers!r}")
    return LayerChoice(names, preset["gradcam"] if preset is not None else names[-1])


def _check_images(images: object) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor [B, 3, H, W], got {type(images).__name__}")
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(
            f"images must be a batch [B, 3, H, W] with B >= 1, got shape {tuple(images.shape)}; "
            "add a batch dimension with images[None] for a single image"
        )
    if not images.dtype.is_floating_point:
        raise TypeError(f"images must be a floating-point tensor, got dtype {images.dtype}")
    return images


def _check_methods(methods: Iterable[str]) -> tuple[str, ...]:
    if isinstance(methods, str):
        raise TypeError(f"methods must be a list of method names, got the string {methods!r}")
    chosen = tuple(dict.fromkeys(methods))
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise ValueError(f"unknown saliency method(s) {unknown or chosen}; choose from {METHODS}")
    return chosen


def _check_options(combine: str, autocast: torch.dtype | None, smooth_sigma: float | None) -> None:
    if combine not in COMBINES:
        raise ValueError(f"combine={combine!r}: choose one of {COMBINES}")
    if autocast is not None and (
        not isinstance(autocast, torch.dtype) or not autocast.is_floating_point
    ):
        raise TypeError(
            f"autocast must be None or a floating dtype such as torch.bfloat16, got {autocast!r}"
        )
    check_sigma(smooth_sigma)


def explain_many(
    model: nn.Module,
    images: torch.Tensor,
    methods: Iterable[str],
    *,
    layers: Layers = "combined",
    target: Target = None,
    combine: Combine = "geomean",
    smooth_sigma: float | None = None,
    autocast: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Saliency maps of several methods for one batch, sharing the passes.

    Parameters
    ----------
    model:
        A classifier returning logits [B, classes]. It is explained in eval mode and
        left exactly as it was.
    images:
        Float tensor [B, 3, H, W] as the model takes it.
    methods:
        Names from :data:`METHODS`.
    layers:
        "single", "combined" (presets of :data:`iqgate.nets.LAYERS`) or module names,
        for the NormGrad methods.
    target:
        None (each image's predicted class), an int, or a LongTensor [B].
    combine:
        "geomean" (the paper's text) or "product" (the authors' code).
    smooth_sigma:
        Gaussian smoothing of the final map before its min-max (the paper uses 1.0).
    autocast:
        None or a dtype (torch.bfloat16) for the forward pass; maps are float32.

    Returns
    -------
    dict mapping each method to float32 maps [B, H, W] in [0, 1] on the images' device.
    """
    images = _check_images(images)
    chosen = _check_methods(methods)
    _check_options(combine, autocast, smooth_sigma)
    choice = resolve_layers(model, layers)
    wants_normgrad = [NORMGRAD_METHODS[m] for m in chosen if m in NORMGRAD_METHODS]
    wants_gradcam = bool({"gradcam", "guided-gradcam"} & set(chosen))
    plan_layers = list(choice.normgrad) if wants_normgrad else []
    if wants_gradcam and choice.gradcam not in plan_layers:
        plan_layers.append(choice.gradcam)
    plan = PassPlan(
        layers=tuple(plan_layers),
        input_gradient="input-x-grad" in chosen,
        guided_input_gradient=bool({"guided-backprop", "guided-gradcam"} & set(chosen)),
    )
    passes = run_passes(model, images, plan, target=target, autocast=autocast)
    size = (images.shape[2], images.shape[3])
    raw: dict[str, torch.Tensor] = {}
    if wants_normgrad:
        per_layer = [
            normgrad_maps(passes.activations[n], passes.gradients[n], wants_normgrad)
            for n in choice.normgrad
        ]
        for variant in wants_normgrad:
            upsampled = [upsample(maps[variant], size) for maps in per_layer]
            raw[f"normgrad-{variant}"] = combine_layer_maps(upsampled, combine)
    if wants_gradcam:
        cam = upsample(
            gradcam_map(passes.activations[choice.gradcam], passes.gradients[choice.gradcam]),
            size,
        )
        raw["gradcam"] = cam
    if passes.guided_input_gradient is not None:
        guided = guided_backprop_map(passes.guided_input_gradient)
        raw["guided-backprop"] = guided
        if "guided-gradcam" in chosen:
            raw["guided-gradcam"] = raw["gradcam"] * guided
    if passes.input_gradient is not None:
        raw["input-x-grad"] = (images.float() * passes.input_gradient.float()).abs().sum(dim=1)
    return {method: finish(raw[method], smooth_sigma).to(images.device) for method in chosen}


def explain(
    model: nn.Module,
    images: torch.Tensor,
    method: str,
    *,
    layers: Layers = "combined",
    target: Target = None,
    combine: Combine = "geomean",
    smooth_sigma: float | None = None,
    autocast: torch.dtype | None = None,
) -> torch.Tensor:
    """Saliency maps of one method: float32 [B, H, W] in [0, 1] (see :func:`explain_many`)."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a method name, got {method!r}; see METHODS")
    return explain_many(
        model,
        images,
        [method],
        layers=layers,
        target=target,
        combine=combine,
        smooth_sigma=smooth_sigma,
        autocast=autocast,
    )[method]


def normgrad_layer_maps(
    model: nn.Module,
    images: torch.Tensor,
    variant: NormGradVariant,
    *,
    layers: Layers = "combined",
    target: Target = None,
    autocast: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Raw per-layer NormGrad maps [B, h, w] at each layer's own resolution, unnormalised."""
    images = _check_images(images)
    if variant not in VARIANTS:
        raise ValueError(f"unknown NormGrad variant {variant!r}; choose one of {VARIANTS}")
    choice = resolve_layers(model, layers)
    passes = run_passes(
        model, images, PassPlan(layers=choice.normgrad), target=target, autocast=autocast
    )
    return {
        name: normgrad_maps(passes.activations[name], passes.gradients[name], [variant])[variant]
        for name in choice.normgrad
    }


__all__ = ["METHODS", "explain", "explain_many", "normgrad_layer_maps", "resolve_layers"]
