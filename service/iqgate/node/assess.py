"""Classification of a batch of frames, then NormGrad for the frames that need it.

Most images pass, so the node classifies cheaply (ONNX Runtime from the package's
``model.onnx``: the CUDA provider on a GPU, the CPU provider otherwise) and runs torch
for NormGrad only on the frames whose verdict needs an explanation.

The node always explains the defect class of the model (its card's ``defect_class``),
with combined NormGrad (conv1x1 by default) at the model's input resolution.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from iqgate.explain import explain
from iqgate.imaging import to_model_input
from iqgate.node.routing import LoadedModel


@dataclass(frozen=True)
class ExplainPolicy:
    """What the node explains and how."""

    explain_all: bool
    variant: str = "conv1x1"
    layers: str = "combined"


@dataclass
class FrameAssessment:
    """The verdict on one frame; ``saliency`` is [S, S] in [0, 1] when explained."""

    probability: float
    flagged: bool
    saliency: np.ndarray | None
    timings_ms: dict[str, float]


def classify(loaded: LoadedModel, inputs: torch.Tensor) -> np.ndarray:
    """Class probabilities [N, classes], by ONNX Runtime when the package has a session."""
    if loaded.onnx is not None:
        (logits,) = loaded.onnx.run(None, {"images": inputs.cpu().numpy()})
        scores = torch.from_numpy(logits).float()
    else:
        scores = loaded.model(inputs).float()
    return torch.softmax(scores, dim=1).cpu().numpy()


def assess_frames(
    loaded: LoadedModel, frames: Sequence[np.ndarray], policy: ExplainPolicy, device: torch.device
) -> list[FrameAssessment]:
    """Assess frames ([H, W] float32 presentation values) of any sizes with one model."""
    card = loaded.card
    count = len(frames)
    started = time.perf_counter()
    with torch.inference_mode():
        inputs = torch.cat(
            [to_model_input(frame[None], card.input_size, device=device) for frame in frames]
        )
        probabilities = classify(loaded, inputs)[:, card.defect_class]
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
            f"normgrad-{policy.variant}",
            layers=policy.layers,
            target=card.defect_class,
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
