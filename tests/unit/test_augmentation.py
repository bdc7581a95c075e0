"""The lossless augmentation moves pixels without resampling them."""

from __future__ import annotations

import torch

from iqgate.data.transforms import lossless_augmentation


def test_lossless_augmentation_gives_the_eight_symmetries_of_the_square_and_keeps_values():
    torch.manual_seed(0)
    image = torch.arange(36.0).reshape(1, 6, 6)
    augment = lossless_augmentation()
    seen = {tuple(augment(image).flatten().tolist()) for _ in range(300)}
    assert len(seen) == 8
    assert all(sorted(values) == image.flatten().tolist() for values in seen)
