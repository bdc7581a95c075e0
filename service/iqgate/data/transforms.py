"""From a grey image in [0, 1] to a model input tensor, with optional training augmentation.

Augmentation acts between resizing and the ImageNet normalisation, on the grey
[1, size, size] image in [0, 1]: colour jitter clamps to [0, 1] and the affine fill is
black, which is only meaningful before normalisation. Apply it to the training split
only (the authors' code also augmented the validation set; PAPER.md, known defects).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torchvision.transforms import v2

from iqgate.imaging import normalise_imagenet, resize_square

ImageTransform = Callable[[torch.Tensor], torch.Tensor]
"""A transform of one grey image [1, H, W] in [0, 1] to an image of the same shape."""


def training_augmentation() -> v2.Compose:
    """The paper's training augmentation (PAPER.md, training table; authors' values).

    - Colour jitter (0.4, 0.4, 0.4, 0.1): on a grey image only brightness and
      contrast change anything, so saturation and hue are left out.
    - Random affine: rotation up to 30 degrees, translation up to 0.1 of each side,
      scale 0.95 to 1.05, shear 0.1 (torchvision's unit, degrees, as in the authors'
      code); the uncovered area is filled with black.
    - Horizontal flip with probability 0.5.

    Returns
    -------
    torchvision.transforms.v2.Compose
        A transform of a grey tensor [1, H, W] in [0, 1]; it draws from torch's
        global random generator (seeded per DataLoader worker by torch).
    """
    return v2.Compose(
        [
            v2.ColorJitter(brightness=0.4, contrast=0.4),
            v2.RandomAffine(degrees=30, translate=(0.1, 0.1), scale=(0.95, 1.05), shear=0.1),
            v2.RandomHorizontalFlip(p=0.5),
        ]
    )


def lossless_augmentation() -> v2.Compose:
    """Flips and quarter turns only: no resampling, so edges, rims and holes a few pixels
    wide stay as sharp as the input (the paper's affine blurs them at small input sizes).

    Returns
    -------
    torchvision.transforms.v2.Compose
        A transform of a grey tensor [1, H, W] (square), drawing from torch's global
        random generator.
    """
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomVerticalFlip(p=0.5),
            v2.RandomChoice([v2.RandomRotation((angle, angle)) for angle in (0, 90)]),
        ]
    )


AUGMENTATIONS = {"paper": training_augmentation, "lossless": lossless_augmentation}
"""Training augmentations by name (``tools/train.py --augment``)."""


def prepare_image(
    unit: np.ndarray, size: int, transform: ImageTransform | None = None
) -> torch.Tensor:
    """Resize a grey image, optionally augment it, and normalise it for the model.

    Parameters
    ----------
    unit : numpy.ndarray
        Grey image [H, W] in [0, 1] (from :func:`iqgate.imaging.grey_to_unit` or one
        frame of :func:`iqgate.imaging.frames_from_dataset`).
    size : int
        Side of the square model input.
    transform : callable, optional
        Applied to the resized grey image [1, size, size] in [0, 1], for example
        :func:`training_augmentation`.

    Returns
    -------
    torch.Tensor
        float32 [3, size, size], as :func:`iqgate.imaging.to_model_input` gives
        when ``transform`` is None.
    """
    if unit.ndim != 2:
        raise ValueError(f"unit must be one grey image [H, W], got shape {unit.shape}")
    grey = resize_square(unit[None], size)[0]
    if transform is not None:
        grey = transform(grey)
    return normalise_imagenet(grey)
