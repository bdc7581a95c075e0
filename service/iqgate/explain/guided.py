r"""Guided Backpropagation (Springenberg et al.; paper section 3.2, eqs. 5 and 8).

At every ReLU the backward pass keeps only positive gradient where the forward input
was positive, :math:`g_{in} = [h > 0]\,[g > 0]\,g`; at every SiLU,
:math:`g_{in} = \mathrm{silu}'(h)\,\mathrm{silu}'(g)\,g` with h the activation's input.
The map is the positive part of dy/dx summed over the input channels.

The activations' own backward supplies the first factor; a tensor hook on each
activation output supplies the rest. Hooks go on the outputs, not on the modules, so a
ReLU module called twice per block (torchvision's ResNet) or an in-place activation
is handled call by call. The hooks stay inert until :meth:`GuidedBackprop.activate`,
so one forward pass serves a plain backward and then a guided one.
"""

from __future__ import annotations

import torch
from torch import nn

from iqgate.explain.capture import ForwardHooks


def silu_derivative(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{silu}'(x) = \sigma(x)\,(1 + x\,(1 - \sigma(x)))`."""
    sig = torch.sigmoid(x)
    return sig * (1 + x * (1 - sig))


class GuidedBackprop(ForwardHooks):
    """Context manager that makes the model's ReLU and SiLU modules guided once activated."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._model = model
        self._active = False

    def _register(self) -> None:
        for module in self._model.modules():
            if isinstance(module, nn.ReLU):
                self._handles.append(module.register_forward_hook(self._hook_relu_output))
            elif isinstance(module, nn.SiLU):
                self._handles.append(module.register_forward_hook(self._hook_silu_output))

    def _remove(self) -> None:
        super()._remove()
        self._active = False

    def activate(self) -> None:
        """From now on, backward passes through this forward's graph are guided."""
        self._active = True

    def _hook_relu_output(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.register_hook(self._relu_gradient)

    def _hook_silu_output(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.register_hook(self._silu_gradient)

    def _relu_gradient(self, grad: torch.Tensor) -> torch.Tensor | None:
        return grad.clamp_min(0) if self._active else None

    def _silu_gradient(self, grad: torch.Tensor) -> torch.Tensor | None:
        return silu_derivative(grad) * grad if self._active else None


def guided_backprop_map(input_gradient: torch.Tensor) -> torch.Tensor:
    """Positive part of the guided dy/dx [B, C, H, W], summed over channels: [B, H, W]."""
    return input_gradient.float().clamp_min(0).sum(dim=1)
