"""Bright anatomical distractors on the chest phantom, on positives and negatives alike.

Dense calcified granulomas (round) and bone islands or calcified costal cartilage
(elongated) reach the grey values of plastic buttons and electrode pads and nearly
those of metal, so the brightest pixel alone does not tell a positive; unlike foreign
objects their edges are soft, which is what a classifier has to learn.
"""

from __future__ import annotations

import numpy as np

from iqgate.data.phantoms.shapes import Window

COUNT_PROBABILITIES = (0.25, 0.3, 0.2, 0.15, 0.1)
"""Probability of 0, 1, ..., 4 distractors on a radiograph, whatever its label."""

PEAK_GREY_RANGE = (0.78, 0.96)
"""Grey value, as a fraction of full scale, at a distractor's centre."""


def draw_calcifications(grey: np.ndarray, rng: np.random.Generator) -> None:
    """Blend soft-edged dense blobs into the radiograph ``grey`` (float, in [0, 1]) in place.

    Parameters
    ----------
    grey : numpy.ndarray
        The anatomy at native size, changed in place.
    rng : numpy.random.Generator
        The sample's anatomy stream (distractors do not depend on the label).
    """
    height, width = grey.shape
    smallest = 1.5 * max(height, width) / 256
    largest = width / 60
    for _ in range(rng.choice(len(COUNT_PROBABILITIES), p=COUNT_PROBABILITIES)):
        radius = float(np.exp(rng.uniform(np.log(smallest), np.log(largest))))
        elongation = 1.0 if rng.random() < 0.6 else rng.uniform(1.5, 3.0)
        angle = rng.uniform(0.0, np.pi)
        centre_x = rng.uniform(0.15, 0.85) * width
        centre_y = rng.uniform(0.12, 0.8) * height
        reach = 2.5 * radius * elongation
        window = Window.around(
            (
                int(centre_x - reach),
                int(centre_y - reach),
                int(centre_x + reach) + 1,
                int(centre_y + reach) + 1,
            ),
            grey.shape,
        )
        ys, xs = window.grid()
        along = (np.cos(angle) * (xs - centre_x) + np.sin(angle) * (ys - centre_y)) / elongation
        across = -np.sin(angle) * (xs - centre_x) + np.cos(angle) * (ys - centre_y)
        profile = np.exp(-0.5 * (along**2 + across**2) / (0.6 * radius) ** 2)
        region = grey[window.region]
        blended = region + (rng.uniform(*PEAK_GREY_RANGE) - region) * profile
        region[...] = np.maximum(region, blended)
