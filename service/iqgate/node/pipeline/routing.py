"""Which model package applies to an image, and the loaded models (torch and ONNX)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from pydicom.dataset import Dataset
from pydicom.uid import UID
from torch import nn

from iqgate.node.ingest.dimse import IMAGE_STORAGE_CLASSES
from iqgate.node.ops.logs import get_logger
from iqgate.node.outputs.uids import facts_are_own_output
from iqgate.packages import (
    ONNX_FILE,
    ModelCard,
    export_onnx,
    find_packages,
    load_package,
    onnx_is_current,
)
from iqgate.routing_rules import HeaderFacts, RouteDecision, Routing, SiteRouting, decide_route

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

    def __init__(
        self,
        models: Sequence[LoadedModel],
        device: torch.device,
        site_routing: SiteRouting | None = None,
    ) -> None:
        self.models = list(models)
        self.device = device
        card_rules = {m.card.name: m.card.routing for m in self.models}
        self.rules = site_routing.apply(card_rules) if site_routing else card_rules
        """Each model's routing rules: its card's, with the site routing file's changes."""
        self._by_name = {m.card.name: m for m in self.models}

    @classmethod
    def from_directory(
        cls,
        models_dir: str | Path,
        device: torch.device,
        *,
        use_onnx: bool = True,
        threads: int = 1,
        site_routing: SiteRouting | None = None,
    ) -> ModelRegistry:
        """Load every package under ``models_dir`` (checksums verified), routed by their
        cards as ``site_routing`` changes them."""
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
        return cls(loaded, device, site_routing)

    def route(self, facts: HeaderFacts) -> tuple[LoadedModel | None, RouteDecision]:
        """The package that assesses the image ``facts`` describe, and the decision with
        the reason when none does (see :func:`route_facts`)."""
        decision = route_facts(self.rules, facts)
        return (self._by_name[decision.model] if decision.model else None), decision


def route_facts(rules: Mapping[str, Routing], facts: HeaderFacts) -> RouteDecision:
    """Where an instance goes: iqgate's own results and instances that are not images
    are excluded before any model is asked; otherwise the models' ``rules`` decide."""
    if facts_are_own_output(facts):
        return RouteDecision(None, {}, ("own output", "an iqgate result"))
    sop_class = UID(facts.sop_class_uid)
    if sop_class not in IMAGE_STORAGE_CLASSES:
        return RouteDecision(None, {}, ("not an image", f"not an image: {sop_class.name}"))
    return decide_route(rules, facts)


def route_header(rules: Mapping[str, Routing], header: Dataset) -> RouteDecision:
    """:func:`route_facts` of a data set's header."""
    return route_facts(rules, HeaderFacts.from_dataset(header))
