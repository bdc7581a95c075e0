"""Classification of a batch of frames, then NormGrad for the frames that need it.

Most images pass, so the node classifies cheaply (ONNX Runtime from the package's
``model.onnx``: the CUDA provider on a GPU, the CPU provider otherwise) and runs torch
for NormGrad only on the frames whose verdict needs an explanation.

The node always explains the defect class of the model (its card's ``defect_class``),
with combined NormGrad (conv1x1 by default) at the model's input resolution. With
``precision="bf16"`` the torch classifier and NormGrad run under bfloat16 autocast
(ONNX Runtime always classifies in float32); ``docs/node-speed-precision.md`` says how
far the verdicts and peaks agree with float32.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from iqgate.explain import explain
from iqgate.imaging import batch_to_model_input
from iqgate.node.outputs.assessment import FrameAssessment
from iqgate.node.pipeline.routing import LoadedModel


@dataclass(frozen=True)
class ExplainPolicy:
    """What the node explains and how."""

    explain_all: bool
    variant: str = "conv1x1"
    layers: str = "combined"
    precision: Literal["fp32", "bf16"] = "fp32"

    @property
    def method(self) -> str:
        """The saliency method that runs (an :func:`iqgate.explain.explain` method name)."""
        return f"normgrad-{self.variant}"

    @property
    def label(self) -> str:
        """The method as reports and SRs state it: method and layers."""
        return f"{self.method} {self.layers}"

    @property
    def autocast(self) -> torch.dtype | None:
        """The autocast dtype of the torch passes (None: float32 throughout)."""
        return torch.bfloat16 if self.precision == "bf16" else None


def autocast_context(
    device: torch.device, dtype: torch.dtype | None
) -> AbstractContextManager[object]:
    """``torch.autocast`` on ``device`` with ``dtype``, or nothing when ``dtype`` is None."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def classify(
    loaded: LoadedModel, inputs: torch.Tensor, autocast: torch.dtype | None = None
) -> np.ndarray:
    """Class probabilities [N, classes], by ONNX Runtime when the package has a session.

    ``autocast`` (e.g. ``torch.bfloat16``) applies to the torch classifier only.
    """
    if loaded.onnx is not None:
        (logits,) = loaded.onnx.run(None, {"images": inputs.cpu().numpy()})
        scores = torch.from_numpy(logits).float()
    else:
        with autocast_context(inputs.device, autocast):
            scores = loaded.model(inputs).float()
    return torch.softmax(scores, dim=1).cpu().numpy()


def assess_frames(
    loaded: LoadedModel,
    frames: Sequence[np.ndarray | torch.Tensor],
    policy: ExplainPolicy,
    device: torch.device,
) -> list[FrameAssessment]:
    """Assess frames ([H, W] float32 presentation values) of any sizes with one model.

    Frames are numpy arrays on the host or tensors already on ``device`` (decoded there).
    """
    card = loaded.card
    count = len(frames)
    started = time.perf_counter()
    with torch.inference_mode():
        inputs = batch_to_model_input(frames, card.input_size, device=device)
        probabilities = classify(loaded, inputs, policy.autocast)[:, card.defect_class]
    inference_ms = (time.perf_counter() - started) * 1000 / count
    flagged = probabilities >= card.decision_threshold
    chosen = np.arange(count) if policy.explain_all else np.flatnonzero(flagged)
    maps: dict[int, np.ndarray] = {}
    explain_ms = 0.0
    if chosen.size:
        started = time.perf_counter()
        batch = inputs[torch.as_tensor(chosen, device=inputs.device)].clone()
        saliency = explain(
            loaded.model,
            batch,
            policy.method,
            layers=policy.layers,
            target=card.defect_class,
            autocast=policy.autocast,
        )
        maps = dict(zip(chosen.tolist(), saliency.cpu().numpy(), strict=True))
        explain_ms = (time.perf_counter() - started) * 1000 / chosen.size
    return [
        FrameAssessment(
            probability=float(probabilities[i]),
            flagged=bool(flagged[i]),
            saliency=maps.get(i),
            timings_ms={"inference": inference_ms} | ({"explain": explain_ms} if i in maps else {}),
        )
        for i in range(count)
    ]
