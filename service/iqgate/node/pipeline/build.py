"""One pipeline from the settings: models, decoders, explain policy and result writer.

``iqgate serve``, ``iqgate assess`` and ``tools/benchmark_node.py`` all assemble the
assessment stages here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from iqgate.config import Settings
from iqgate.node.ops.logs import get_logger
from iqgate.node.outputs.compat import apply_speedups
from iqgate.node.outputs.results import ResultWriter
from iqgate.node.pipeline.assess import ExplainPolicy
from iqgate.node.pipeline.decode import Decoder
from iqgate.node.pipeline.gpu_decode import GpuDecoder, frame_decoder
from iqgate.node.pipeline.routing import ModelRegistry

log = get_logger("pipeline")


def choose_device(setting: str) -> torch.device:
    """The torch device of the ``device`` setting (``auto``: CUDA when present, else CPU)."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("IQGATE_DEVICE=cuda but no CUDA device is available; use auto or cpu")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def explain_policy(settings: Settings) -> ExplainPolicy:
    """What the node explains and how, from the ``explain``, ``overlays``, ``normgrad_*``
    and ``precision`` settings (an overlay of every image needs every image explained)."""
    return ExplainPolicy(
        explain_all=settings.explain == "all" or settings.overlays == "all",
        variant=settings.normgrad_variant,
        layers=settings.normgrad_layers,
        precision=settings.precision,
    )


@dataclass
class Pipeline:
    """The assessment stages of one node: route, decode, assess, write."""

    registry: ModelRegistry
    cpu_decoder: Decoder
    """The CPU decoder (its processes); :attr:`decoder` uses it where the GPU does not."""
    decoder: Decoder | GpuDecoder
    """What the worker decodes with: on the GPU where it can, else :attr:`cpu_decoder`."""
    policy: ExplainPolicy
    writer: ResultWriter

    @property
    def device(self) -> torch.device:
        """Where the models run."""
        return self.registry.device

    def close(self) -> None:
        """Stop the decode processes."""
        self.cpu_decoder.close()


def build_pipeline(settings: Settings) -> Pipeline:
    """The pipeline ``settings`` describe (models from ``models_dir``, results to
    ``results_dir``, ``decode_processes`` CPU decode processes, 0: in the caller)."""
    apply_speedups()
    device = choose_device(settings.device)
    registry = ModelRegistry.from_directory(
        settings.models_dir,
        device,
        use_onnx=settings.classifier == "onnx",
        threads=settings.torch_threads,
        site_routing=settings.site_routing,
    )
    log.info("pipeline_starting", device=str(device), models=[m.card.name for m in registry.models])
    if not registry.models:
        log.warning(
            "no_models",
            models_dir=str(settings.models_dir),
            consequence="every image is recorded as not assessed",
        )
    cpu = Decoder(
        settings.decode_processes,
        max_pixels=settings.decode_max_pixels,
        timeout_s=settings.decode_timeout_s,
    )
    policy = explain_policy(settings)
    return Pipeline(
        registry=registry,
        cpu_decoder=cpu,
        decoder=frame_decoder(cpu, device, settings.decode_max_pixels),
        policy=policy,
        writer=ResultWriter(settings.results_dir, settings.overlays, policy.label),
    )
