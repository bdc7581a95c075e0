"""The model's verdict on one frame, as the assessment hands it to the outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FrameAssessment:
    """The verdict on one frame; ``saliency`` is [S, S] in [0, 1] when explained."""

    probability: float
    flagged: bool
    saliency: np.ndarray | None
    timings_ms: dict[str, float]
