"""Which model package applies to an image, and the loaded models (torch and ONNX)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from pydicom.dataset import Dataset
from torch import nn

from iqgate.node.ops.logs import get_logger
from iqgate.packages import (
    ONNX_FILE,
    ModelCard,
    export_onnx,
    find_packages,
    load_package,
    onnx_is_current,
)
from iqgate.routing_rules import HeaderFacts

log = get_logger("models")


@dataclass
class LoadedModel:
    """A model package ready for inference: torch always, ONNX Runtime when available."""

    card: ModelCard
    model: nn.Module
    directory: Path
    onnx: object | None = None

    @property
    def classifier(self) -> str:
        """Which runtime classifies: ``onnxruntime`` or ``torch``."""
        return "onnxruntime" if self.onnx is not None else "torch"


def onnx_session(directory: Path, device: torch.device, threads: int) -> object | None:
    """An ONNX Runtime session of a package's ``model.onnx``, exported first when missing.

    The CUDA execution provider is used on a CUDA device, the CPU provider otherwise.
    Returns None (torch classifies) when ONNX Runtime is not installed or the package
    folder is read-only and holds no current export.
    """
    try:
        import onnxruntime
    except ImportError:
        log.warning("onnxruntime_missing", consequence="torch classifies")
        return None
    if not onnx_is_current(directory):
        try:
            export_onnx(directory)
            log.info("onnx_exported", package=directory.name)
        except OSError as exc:
            log.warning(
                "onnx_export_failed",
                package=directory.name,
                error=str(exc),
                consequence="torch classifies",
            )
            return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return onnxruntime.InferenceSession(
        str(directory / ONNX_FILE), sess_options=options, providers=providers
    )


class ModelRegistry:
    """Every model package of a folder, loaded once on one device."""

    def __init__(self, models: Sequence[LoadedModel], device: torch.device) -> None:
        self.models = list(models)
        self.device = device

    @classmethod
    def from_directory(
        cls,
        models_dir: str | Path,
        device: torch.device,
        *,
        use_onnx: bool = True,
        threads: int = 1,
    ) -> ModelRegistry:
        """Load every package under ``models_dir`` (checksums verified)."""
        loaded = []
        for directory in find_packages(models_dir):
            model, card = load_package(directory, device)
            session = onnx_session(directory, device, threads) if use_onnx else None
            loaded.append(LoadedModel(card, model, directory, session))
            log.info(
                "model_loaded",
                model=card.name,
                version=card.version,
                classifier="onnxruntime" if session is not None else "torch",
            )
        return cls(loaded, device)

    def route(self, ds: Dataset) -> tuple[LoadedModel | None, str]:
        """The first package whose rules apply to ``ds``, or None with the reasons."""
        reasons = []
        facts = HeaderFacts.from_dataset(ds)
        for loaded in self.models:
            mismatch = loaded.card.routing.mismatch(facts)
            if mismatch is None:
                return loaded, ""
            reasons.append(f"{loaded.card.name}: {mismatch[1]}")
        return None, "; ".join(reasons) or "no model packages loaded"
