"""The forward and backward passes behind every saliency method.

One forward pass records the requested layer outputs; one backward pass gives dy/dA at
those layers (and dy/dx when asked); one more backward through the same graph, with the
activations guided, gives the guided dy/dx. The caller's model is observed through
hooks that are always removed, in eval mode that is always restored.
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from iqgate.errors import SaliencyError
from iqgate.explain.capture import LayerCapture, eval_mode
from iqgate.explain.guided import GuidedBackprop

Target = int | torch.Tensor | None


@dataclass(frozen=True)
class PassPlan:
    """What one explanation needs from the passes."""

    layers: tuple[str, ...] = ()
    input_gradient: bool = False
    guided_input_gradient: bool = False


@dataclass
class PassResult:
    """Layer outputs A, their gradients dy/dA, and gradients with respect to the input."""

    targets: torch.Tensor
    activations: dict[str, torch.Tensor] = field(default_factory=dict)
    gradients: dict[str, torch.Tensor] = field(default_factory=dict)
    input_gradient: torch.Tensor | None = None
    guided_input_gradient: torch.Tensor | None = None


def resolve_targets(target: Target, logits: torch.Tensor) -> torch.Tensor:
    """Target class per image: the predicted class (None), one class (int) or one per image."""
    batch, classes = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    if isinstance(target, torch.Tensor):
        if target.dtype.is_floating_point or target.dtype == torch.bool:
            raise TypeError(f"target must be an integer tensor, got dtype {target.dtype}")
        if target.shape != (batch,):
            raise ValueError(
                f"target tensor must have shape [{batch}] (one class per image), "
                f"got {tuple(target.shape)}"
            )
        targets = target.to(device=logits.device, dtype=torch.long)
    elif isinstance(target, int) and not isinstance(target, bool):
        targets = torch.full((batch,), target, dtype=torch.long, device=logits.device)
    else:
        raise TypeError(f"target must be None, an int or a LongTensor [B], got {target!r}")
    if bool(((targets < 0) | (targets >= classes)).any()):
        raise ValueError(
            f"target {targets.tolist()} out of range for a model with {classes} classes"
        )
    return targets


def _forward(model: nn.Module, images: torch.Tensor, autocast: torch.dtype | None) -> torch.Tensor:
    context = (
        torch.autocast(device_type=images.device.type, dtype=autocast)
        if autocast is not None
        else nullcontext()
    )
    with context:
        logits = model(images)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise SaliencyError(
            "the model must return logits [B, classes]; got "
            f"{type(logits).__name__} {tuple(getattr(logits, 'shape', ()))}"
        )
    return logits


def run_passes(
    model: nn.Module,
    images: torch.Tensor,
    plan: PassPlan,
    *,
    target: Target = None,
    autocast: torch.dtype | None = None,
) -> PassResult:
    """Run the forward pass and the backward passes ``plan`` asks for."""
    for protect in (False, True):
        with ExitStack() as stack:
            stack.enter_context(torch.enable_grad())
            stack.enter_context(eval_mode(model))
            capture = stack.enter_context(LayerCapture(model, plan.layers, protect=protect))
            guided = (
                stack.enter_context(GuidedBackprop(model)) if plan.guided_input_gradient else None
            )
            x = images.detach().requires_grad_(True)
            logits = _forward(model, x, autocast)
            if capture.overwritten():
                continue
            activations = capture.outputs()
            targets = resolve_targets(target, logits)
            score = logits.float().gather(1, targets[:, None]).sum()
            result = PassResult(targets=targets.detach(), activations=activations)
            wanted = [activations[name] for name in plan.layers]
            if plan.input_gradient:
                wanted.append(x)
            if wanted:
                grads = torch.autograd.grad(score, wanted, retain_graph=plan.guided_input_gradient)
                result.gradients = dict(zip(plan.layers, grads, strict=False))
                if plan.input_gradient:
                    result.input_gradient = grads[-1]
            if guided is not None:
                guided.activate()
                (result.guided_input_gradient,) = torch.autograd.grad(score, x)
            result.activations = {k: v.detach() for k, v in activations.items()}
            return result
    raise SaliencyError("recorded layer outputs were overwritten even on protected copies")
