"""Classifier architectures and their saliency layer presets (shared/PAPER.md, section 4).

``build`` returns a torchvision classifier with a fresh ``num_classes``-way head,
optionally initialised from a local checkpoint, tagged with its architecture so that
:mod:`iqgate.explain` can find the layer presets in :data:`LAYERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypedDict

import torch
from torch import nn
from torchvision import models

from iqgate.errors import ModelPackageError

ARCH_ATTRIBUTE = "iqgate_arch"
"""Name of the attribute ``build`` sets on a model to record its architecture."""


class LayerPreset(TypedDict):
    """Module names used by the saliency methods for one architecture."""

    single: list[str]
    combined: list[str]
    gradcam: str


def _resnet_preset(last_block: str) -> LayerPreset:
    return {
        "single": [last_block],
        "combined": ["layer2.0", "layer3.0", "layer4.0", last_block],
        "gradcam": last_block,
    }


LAYERS: dict[str, LayerPreset] = {
    "resnet18": _resnet_preset("layer4.1"),
    "resnet34": _resnet_preset("layer4.2"),
    "resnet50": _resnet_preset("layer4.2"),
    "efficientnet_b0": {
        "single": ["features.8.2"],
        "combined": [f"features.{k}.0" for k in range(9)] + ["features.8.2"],
        "gradcam": "features.8",
    },
}
"""Layer presets per architecture, exactly as in shared/PAPER.md ("Layers")."""

_CONSTRUCTORS: dict[str, Callable[[], nn.Module]] = {
    "resnet18": models.resnet18,
    "resnet34": models.resnet34,
    "resnet50": models.resnet50,
    "efficientnet_b0": models.efficientnet_b0,
}

ARCHITECTURES: tuple[str, ...] = tuple(_CONSTRUCTORS)


def head_name(arch: str) -> str:
    """Module name of the final linear classifier of ``arch``."""
    return "classifier.1" if arch.startswith("efficientnet") else "fc"


def architecture_of(model: nn.Module) -> str | None:
    """The architecture ``build`` tagged ``model`` with, or None for a foreign model."""
    arch = getattr(model, ARCH_ATTRIBUTE, None)
    return arch if isinstance(arch, str) else None


def _new_head(in_features: int, num_classes: int) -> nn.Linear:
    head = nn.Linear(in_features, num_classes)
    nn.init.kaiming_normal_(head.weight, mode="fan_in", nonlinearity="relu")
    nn.init.zeros_(head.bias)
    return head


def _replace_head(model: nn.Module, arch: str, num_classes: int) -> None:
    if arch.startswith("efficientnet"):
        classifier = model.get_submodule("classifier")
        assert isinstance(classifier, nn.Sequential)
        old = classifier[1]
        assert isinstance(old, nn.Linear)
        classifier[1] = _new_head(old.in_features, num_classes)
    else:
        old = model.get_submodule("fc")
        assert isinstance(old, nn.Linear)
        model.fc = _new_head(old.in_features, num_classes)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state_dict from a ``.safetensors`` file or a torch checkpoint.

    A torch checkpoint may hold the state_dict itself or wrap it under
    ``"state_dict"`` or ``"model"``; only tensors are loaded (``weights_only``).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelPackageError(
            f"weights file {str(path)!r} does not exist; pass the path of a local "
            "checkpoint (nothing is downloaded)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any decoder failure means the file is unusable
        raise ModelPackageError(f"cannot read weights file {str(path)!r}: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise ModelPackageError(f"weights file {str(path)!r} does not hold a state_dict")
    return {str(k).removeprefix("module."): v for k, v in loaded.items()}


def _load_backbone(
    model: nn.Module, arch: str, state: dict[str, torch.Tensor], path: Path, new_head: bool
) -> None:
    """Load ``state`` into ``model``; a head of another shape (ImageNet's) is dropped,
    and any head with ``new_head``."""
    own = model.state_dict()
    head = head_name(arch)
    state = dict(state)
    for key in (f"{head}.weight", f"{head}.bias"):
        if key in state and (new_head or state[key].shape != own[key].shape):
            del state[key]
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(f"{head}.")]
    if missing or unexpected:
        raise ModelPackageError(
            f"weights file {str(path)!r} does not fit {arch}: "
            f"missing {missing[:5]}, unexpected {list(unexpected)[:5]}; "
            f"is it a {arch} checkpoint?"
        )


def build(
    arch: str,
    num_classes: int = 2,
    weights: str | Path | None = None,
    new_head: bool = False,
) -> nn.Module:
    """Build a torchvision classifier with a new ``num_classes``-way head.

    Parameters
    ----------
    arch:
        One of :data:`ARCHITECTURES`.
    num_classes:
        Outputs of the new head, which gets He (Kaiming normal) initialisation.
    weights:
        Path of a local checkpoint (ImageNet or our own) or None for random
        weights. A head whose shape differs from the new one is dropped.
    new_head:
        Keep the fresh head even where the checkpoint's head fits: the checkpoint is
        a backbone from another task (a two-class package of another task, say).

    Returns
    -------
    The model in eval mode, tagged with ``arch`` (see :func:`architecture_of`).
    """
    if arch not in _CONSTRUCTORS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHITECTURES}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    model = _CONSTRUCTORS[arch]()
    _replace_head(model, arch, num_classes)
    if weights is not None:
        _load_backbone(model, arch, read_state_dict(weights), Path(weights), new_head)
    setattr(model, ARCH_ATTRIBUTE, arch)
    return model.eval()
