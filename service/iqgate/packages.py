"""Model packages: a folder with ``model.json`` (the card) and ``weights.safetensors``.

The card says what the model is, what it applies to (routing rules), how its input is
prepared, which saliency layers and decision threshold to use, what it was trained on
and how it scored, and the SHA-256 of its weights, which is checked on every load.
``model.onnx`` is derived from the weights by :func:`export_onnx` and never trusted on
its own: it carries the weights checksum it was made from.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors.torch import load_file, save_file
from torch import nn

from iqgate import nets
from iqgate.errors import ModelPackageError
from iqgate.routing_rules import Routing

CARD_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
ONNX_FILE = "model.onnx"
ONNX_CHECKSUM_KEY = "iqgate_weights_sha256"


class Preprocessing(BaseModel):
    """How pixel data becomes model input (see :mod:`iqgate.imaging`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resize: Literal["square-bilinear-antialias"] = "square-bilinear-antialias"
    normalisation: Literal["imagenet"] = "imagenet"
    channels: Literal["grey-repeated-3"] = "grey-repeated-3"
    window: Literal["voi-lut-or-window-else-minmax"] = "voi-lut-or-window-else-minmax"


class KindCounts(BaseModel):
    """Positives of one object kind in a split, and how many of them were flagged.

    ``images``/``flagged`` count positives with at least one object of ``kind``;
    ``alone_images``/``alone_flagged`` those whose objects are all of it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    images: int
    flagged: int
    alone_images: int
    alone_flagged: int


class SplitMetrics(BaseModel):
    """Scores on one split."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    images: int
    accuracy: float
    auc: float | None
    """None when the split holds one class only (no ROC curve)."""
    sensitivity: float | None = None
    specificity: float | None = None
    by_kind: list[KindCounts] | None = None
    """Sensitivity split by object kind at the decision threshold; None where the
    images do not say what their objects are (phantoms do)."""


class ModelCard(BaseModel):
    """Everything ``model.json`` records about a model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str
    task: str
    description: str
    intended_use: str
    architecture: str
    input_size: int = Field(gt=0)
    classes: list[str]
    defect_class: int = 1
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    layer_preset: Literal["single", "combined"] = "combined"
    normgrad_variant: Literal["bias", "scaling", "conv1x1", "conv3x3"] = "conv3x3"
    decision_threshold: float = Field(ge=0.0, le=1.0)
    threshold_rule: str
    routing: Routing = Field(default_factory=Routing)
    training: dict[str, object] = Field(default_factory=dict)
    metrics: dict[str, SplitMetrics] = Field(default_factory=dict)
    weights_sha256: str = ""
    weights_dtype: Literal["float32", "float16"] = "float32"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_package(
    directory: str | Path, model: nn.Module, card: ModelCard, *, half: bool = False
) -> ModelCard:
    """Write ``weights.safetensors`` and ``model.json``; returns the card with its checksum.

    ``half`` stores float16 weights (integer buffers keep their type); they are
    promoted back to float32 on load.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    weights = directory / WEIGHTS_FILE
    save_file(state, str(weights.with_name(WEIGHTS_FILE + ".tmp")))
    os.replace(weights.with_name(WEIGHTS_FILE + ".tmp"), weights)
    final = card.model_copy(
        update={
            "weights_sha256": sha256_of(weights),
            "weights_dtype": "float16" if half else "float32",
        }
    )
    _write_atomically(directory / CARD_FILE, (final.model_dump_json(indent=2) + "\n").encode())
    (directory / ONNX_FILE).unlink(missing_ok=True)
    return final


def read_card(directory: str | Path) -> ModelCard:
    """Read and validate ``model.json``; a bad card is a :class:`ModelPackageError`."""
    path = Path(directory) / CARD_FILE
    try:
        return ModelCard.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise ModelPackageError(f"no {CARD_FILE} in model package {str(directory)!r}") from exc
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ModelPackageError(f"invalid {path}: {exc}") from exc


def verify_weights(directory: str | Path, card: ModelCard) -> Path:
    """Path of the weights file after checking it against the card's SHA-256."""
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelPackageError(f"model package {str(directory)!r} has no {WEIGHTS_FILE}")
    actual = sha256_of(weights)
    if actual != card.weights_sha256:
        raise ModelPackageError(
            f"{weights} does not match its card: sha256 {actual[:12]}... but model.json "
            f"records {card.weights_sha256[:12]}...; the file is corrupt or was replaced "
            "(retrain or restore the package)"
        )
    return weights


def load_package(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelCard]:
    """Load a package: the model in eval mode on ``device`` (float32) and its card."""
    card = read_card(directory)
    weights = verify_weights(directory, card)
    model = nets.build(card.architecture, num_classes=len(card.classes))
    state = {
        k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()
    }
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelPackageError(
            f"weights of {str(directory)!r} do not fit {card.architecture}: {exc}"
        ) from exc
    return model.to(device).eval(), card


def find_packages(models_dir: str | Path) -> list[Path]:
    """Package folders (those holding a ``model.json``) under ``models_dir``, sorted."""
    root = Path(models_dir)
    return sorted(p.parent for p in root.glob(f"*/{CARD_FILE}"))


def export_onnx(directory: str | Path, *, opset: int = 18) -> Path:
    """Write ``model.onnx`` (input ``images`` [B, 3, S, S], output ``logits``) from the weights.

    The ONNX file records the weights checksum it was exported from, so a stale export
    is detected by :func:`onnx_is_current`.
    """
    import onnx

    directory = Path(directory)
    model, card = load_package(directory)
    example = torch.zeros(2, 3, card.input_size, card.input_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    tmp = directory / (ONNX_FILE + ".tmp")
    torch.onnx.export(
        model,
        (example,),
        str(tmp),
        dynamo=True,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        opset_version=opset,
        external_data=False,
        verbose=False,
    )
    proto = onnx.load(str(tmp))
    onnx.helper.set_model_props(proto, {ONNX_CHECKSUM_KEY: card.weights_sha256})
    onnx.save(proto, str(tmp))
    os.replace(tmp, directory / ONNX_FILE)
    return directory / ONNX_FILE


def onnx_is_current(directory: str | Path) -> bool:
    """Whether ``model.onnx`` exists and was exported from the current weights."""
    import onnx

    directory = Path(directory)
    path = directory / ONNX_FILE
    if not path.is_file():
        return False
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return props.get(ONNX_CHECKSUM_KEY) == read_card(directory).weights_sha256
