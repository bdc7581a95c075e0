"""tools/precision_agreement.py: the agreement arithmetic, and bf16 in the node's path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from iqgate.node.pipeline.assess import ExplainPolicy
from iqgate.node.pipeline.routing import LoadedModel, ModelRegistry
from iqgate_testkit import precision_agreement as tool
from iqgate_testkit.package_factory import tiny_package

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> LoadedModel:
    """A random ResNet-18 package at 32 x 32, loaded the way the node loads it."""
    folder = tmp_path_factory.mktemp("models")
    tiny_package(folder, "tiny", modalities=["MR"], threshold=0.5, seed=5, input_size=32)
    return ModelRegistry.from_directory(folder, CPU, use_onnx=False).models[0]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return tool.phantom_frames("cmr", 6, seed=1)


def run(loaded: LoadedModel, frames: list[np.ndarray], precision: str):
    policy = ExplainPolicy(True, precision=precision)  # type: ignore[arg-type]
    return tool.run_precision(loaded, frames, policy, CPU, batch=4)


def test_float32_against_itself_agrees_exactly(tiny, frames):
    reference = run(tiny, frames, "fp32")
    result = tool.agreement(reference, run(tiny, frames, "fp32"), threshold=0.5, tau=15)
    assert result.images == 6
    assert result.verdict_agreement == 1.0
    assert result.max_abs_probability_difference == 0.0
    assert result.peak_same_pixel == 1.0 and result.peak_within_tau == 1.0
    assert result.map_pearson_mean == 1.0 and result.map_pearson_min == 1.0


def test_an_injected_difference_is_detected(tiny, frames):
    reference = run(tiny, frames, "fp32")
    threshold = float(np.median(reference.probabilities))
    probabilities = reference.probabilities.copy()
    first = int(np.argmax(reference.probabilities >= threshold))
    probabilities[first] = threshold - 0.25  # a flagged image now passes
    maps = reference.maps.copy()
    row, column = tool.peaks(maps[2:3])[0]
    maps[2, row + 16 if row < 16 else row - 16, column] = 2.0  # its peak moves 16 pixels
    changed = replace(reference, probabilities=probabilities, maps=maps)
    result = tool.agreement(reference, changed, threshold=threshold, tau=15)
    assert result.verdict_agreement == pytest.approx(5 / 6)
    assert result.max_abs_probability_difference == pytest.approx(
        reference.probabilities[first] - threshold + 0.25
    )
    assert result.peak_same_pixel == pytest.approx(5 / 6)
    assert result.peak_within_tau == pytest.approx(5 / 6)
    assert result.map_pearson_min < 1.0


def test_peaks_within_tau_and_pearson_by_hand():
    maps = np.zeros((3, 40, 40))
    maps[0, 5, 5] = maps[1, 30, 30] = maps[2, 0, 39] = 1.0
    moved = np.zeros_like(maps)
    moved[0, 5, 5] = moved[1, 30, 39] = moved[2, 20, 39] = 1.0  # 0, 9 and 20 pixels off
    reference = tool.PrecisionRun(np.array([0.1, 0.6, 0.9]), maps, 0.0)
    result = tool.agreement(reference, replace(reference, maps=moved), threshold=0.5, tau=15)
    assert result.peak_same_pixel == pytest.approx(1 / 3)
    assert result.peak_within_tau == pytest.approx(2 / 3)
    ramp = np.arange(16.0).reshape(1, 4, 4)
    np.testing.assert_allclose(tool.pearson(ramp, 2 * ramp + 1), [1.0])
    np.testing.assert_allclose(tool.pearson(ramp, -ramp), [-1.0])


def test_bf16_autocast_reaches_the_classifier_and_the_maps(tiny, frames):
    assert ExplainPolicy(False, precision="bf16").autocast is torch.bfloat16
    assert ExplainPolicy(False).autocast is None
    reference, bf16 = run(tiny, frames, "fp32"), run(tiny, frames, "bf16")
    assert not np.array_equal(reference.probabilities, bf16.probabilities)
    assert not np.array_equal(reference.maps, bf16.maps)
    result = tool.agreement(reference, bf16, threshold=0.5, tau=15)
    assert 0.0 <= result.verdict_agreement <= 1.0
    assert bf16.maps.dtype == np.float32 and bf16.maps.shape == (6, 32, 32)
