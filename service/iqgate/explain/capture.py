"""Context managers that observe a model without changing it: eval mode and layer outputs."""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Self

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from iqgate.errors import SaliencyError


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module in eval mode and restore each module's own flag afterwards."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, training in flags:
            module.training = training


def find_modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """Look up modules by name; an unknown name is a ``ValueError`` with suggestions."""
    available = dict(model.named_modules())
    found: dict[str, nn.Module] = {}
    for name in names:
        if not isinstance(name, str) or name not in available or name == "":
            close = difflib.get_close_matches(str(name), [n for n in available if n], n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(
                f"model has no layer {name!r}{hint} (names are those of model.named_modules())"
            )
        found[name] = available[name]
    return found


class ForwardHooks(ABC):
    """Base of context managers that register forward hooks and always remove them."""

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    @abstractmethod
    def _register(self) -> None:
        """Register this context's hooks (subclasses), appending to ``self._handles``."""

    def __enter__(self) -> Self:
        try:
            self._register()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class LayerCapture(ForwardHooks):
    """Record the output tensor of named modules during one forward pass.

    With ``protect=True`` the model continues on a clone of each recorded output, so
    in-place operations downstream cannot overwrite what was recorded; without it,
    :meth:`overwritten` tells whether that happened (then run again protected).
    """

    def __init__(self, model: nn.Module, names: Sequence[str], *, protect: bool = False) -> None:
        super().__init__()
        self._modules = find_modules(model, names)
        self._protect = protect
        self._outputs: dict[str, torch.Tensor] = {}
        self._versions: dict[str, int] = {}
        self._calls: dict[str, int] = {}

    def _register(self) -> None:
        for name, module in self._modules.items():
            self._handles.append(module.register_forward_hook(self._recorder(name)))

    def _recorder(self, name: str) -> Callable[[nn.Module, object, object], torch.Tensor | None]:
        def record(module: nn.Module, inputs: object, output: object) -> torch.Tensor | None:
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                raise SaliencyError(
                    f"layer {name!r} returns {type(output).__name__} "
                    f"{tuple(getattr(output, 'shape', ()))}; saliency layers must output "
                    "one [B, C, h, w] tensor"
                )
            self._calls[name] = self._calls.get(name, 0) + 1
            self._outputs[name] = output
            self._versions[name] = output._version
            return output.clone() if self._protect else None

        return record

    def outputs(self) -> dict[str, torch.Tensor]:
        """The recorded outputs; each layer must have run exactly once."""
        for name in self._modules:
            calls = self._calls.get(name, 0)
            if calls != 1:
                raise SaliencyError(
                    f"layer {name!r} ran {calls} times in one forward pass; "
                    "choose a module that runs exactly once (a block, not a shared activation)"
                )
        return dict(self._outputs)

    def overwritten(self) -> bool:
        """Whether an in-place operation changed a recorded output after it was recorded."""
        return any(self._outputs[n]._version != v for n, v in self._versions.items())
