"""Negative twins are scored in the same frame as their positives."""

from __future__ import annotations

import pytest
import torch

from iqgate import nets
from iqgate.data.object_cxr import ImageItem
from iqgate.study.evaluation import PointingSettings, evaluate_model

INPUT = 32
NATIVE = (48, 160)
"""A wide native image: its frame and the square input frame differ a lot."""


def _item(index: int) -> ImageItem:
    generator = torch.Generator().manual_seed(index)
    x = float(torch.randint(10, NATIVE[1] - 30, (1,), generator=generator))
    y = float(torch.randint(5, NATIVE[0] - 15, (1,), generator=generator))
    native = torch.tensor([[x, y, x + 24, y + 9]])
    scale = torch.tensor([INPUT / NATIVE[1], INPUT / NATIVE[0]] * 2)
    return ImageItem(
        image=torch.randn(3, INPUT, INPUT, generator=generator),
        label=1,
        boxes=native * scale,
        native_boxes=native,
        shapes=(),
        name=f"case-{index}",
        native_size=NATIVE,
    )


@pytest.mark.parametrize(("frame", "tau"), [("input", 1.0), ("original", 3.0)])
def test_a_twin_identical_to_its_positive_scores_as_the_positive(frame: str, tau: float) -> None:
    """With each twin the positive itself, the twin's hit is the positive's hit in both
    scoring frames, every row and smoothing."""
    torch.manual_seed(0)
    model = nets.build("resnet18").eval()
    data = [_item(i) for i in range(12)]
    settings = PointingSettings(tau=tau, pg_frame=frame, batch_size=6)
    result = evaluate_model(model, data, settings, device=torch.device("cpu"), twins=data)
    assert len(result.per_image) == len(data)
    compared = 0
    for image in result.per_image:
        for row, by_smoothing in image["outcomes"].items():
            for smoothing, outcome in by_smoothing.items():
                assert image["twin_hit"][row][smoothing] == outcome["hit"], (row, smoothing)
                compared += 1
    assert compared >= len(data) * 2
