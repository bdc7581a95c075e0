"""The node's data path: frames of any sizes to one model-input batch, host to device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iqgate.imaging import batch_to_model_input, stack_to_device, to_model_input


def mixed_frames() -> list[np.ndarray | torch.Tensor]:
    rng = np.random.default_rng(3)
    shapes = [(50, 40), (30, 30), (50, 40), (64, 20), (30, 30)]
    frames: list[np.ndarray | torch.Tensor] = [
        rng.random(shape, dtype=np.float32) for shape in shapes
    ]
    frames[2] = torch.from_numpy(frames[2])  # type: ignore[arg-type]  # decoded on the device
    return frames


def test_a_batch_equals_frame_by_frame_preprocessing_in_order():
    frames = mixed_frames()
    batch = batch_to_model_input(frames, 16)
    one_by_one = torch.cat([to_model_input(frame[None], 16) for frame in frames])
    assert batch.shape == (5, 3, 16, 16) and batch.dtype == torch.float32
    assert torch.equal(batch, one_by_one)


def test_frames_must_be_two_dimensional():
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        batch_to_model_input([np.zeros((1, 4, 4), np.float32)], 8)


def test_stacking_on_the_cpu_keeps_values_and_dtype():
    arrays = [np.arange(6, dtype=np.uint16).reshape(2, 3) + i for i in range(3)]
    stacked = stack_to_device(arrays, "cpu")
    assert stacked.dtype == torch.uint16
    np.testing.assert_array_equal(stacked.numpy(), np.stack(arrays))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_batch_goes_through_pinned_memory_and_matches_the_cpu():
    frames = mixed_frames()
    on_gpu = batch_to_model_input(
        [f if isinstance(f, np.ndarray) else f.cuda() for f in frames], 16, device="cuda"
    )
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), batch_to_model_input(frames, 16), atol=1e-5, rtol=0)
    stacked = stack_to_device([np.ones((4, 4), np.float32)] * 2, "cuda")
    assert stacked.device.type == "cuda" and float(stacked.sum()) == 32.0
