"""One synthetic image with its label and annotations, and the rules that seed it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from iqgate.data.phantoms.shapes import Box

MAX_INTENSITY = 4095
"""Phantom images are 12-bit: grey values 0..4095, high = bright."""


class Task(str, Enum):
    """The two quality problems of the paper, each with its phantom."""

    CXR = "cxr"
    """Chest radiograph; label 1 = a foreign object is present (Object-CXR)."""
    CMR = "cmr"
    """4-chamber cardiac MR frame; label 1 = the LV outflow tract is visible."""

    @classmethod
    def coerce(cls, task: Task | str) -> Task:
        """``task`` as a :class:`Task`; a ``ValueError`` names the allowed values."""
        try:
            return cls(task)
        except ValueError:
            allowed = ", ".join(repr(t.value) for t in cls)
            raise ValueError(f"task must be one of {allowed}; got {task!r}") from None

    @property
    def code(self) -> int:
        """The number that stands for the task in the random seed."""
        return {Task.CXR: 1, Task.CMR: 2}[self]


@dataclass(frozen=True, eq=False)
class Sample:
    """One phantom image with its ground truth.

    Attributes
    ----------
    task : Task
        Which phantom this is.
    seed, index : int
        The image depends on ``(seed, index)`` only (and on the label rule).
    image : numpy.ndarray
        ``uint16`` grey image ``H x W``, values 0..4095, high = bright.
    label : int
        1 when the quality problem is present, else 0.
    boxes : list of tuple
        ``(x1, y1, x2, y2)`` inclusive pixel box of each annotated object.
    shapes : list of str
        Each object in the Object-CXR grammar (``"0 x1 y1 x2 y2"``, ...).
    kinds : list of str
        What each object is: a foreign object's form for CXR (``"button"``,
        ``"clip-bar"``, ...), ``"lvot"`` for CMR.
    object_mask : numpy.ndarray
        Boolean ``H x W``: the pixels the annotated objects changed.
    pixel_spacing_mm : float
        Physical size of a (square) pixel.
    """

    task: Task
    seed: int
    index: int
    image: np.ndarray
    label: int
    boxes: list[Box]
    shapes: list[str]
    kinds: list[str]
    object_mask: np.ndarray
    pixel_spacing_mm: float

    @property
    def name(self) -> str:
        """A file-name stem unique per task, seed and index, e.g. ``cxr-s7-00042``."""
        return f"{self.task.value}-s{self.seed}-{self.index:05d}"


def label_for(index: int, positive_fraction: float) -> int:
    """The label of sample ``index``: every prefix of a set holds the exact fraction.

    Sample ``i`` is positive when ``floor((i + 1) f) > floor(i f)``, so any first ``n``
    samples hold ``floor(n f)`` positives, and the label depends on ``i`` and ``f`` only.
    """
    return int(math.floor((index + 1) * positive_fraction) > math.floor(index * positive_fraction))


@dataclass(frozen=True)
class SampleStreams:
    """Independent random streams of one sample.

    The anatomy and the noise do not depend on the label, so a positive and a negative
    rendering of the same ``(seed, index)`` differ only where the objects are.
    """

    anatomy: np.random.Generator
    objects: np.random.Generator
    noise: np.random.Generator

    @classmethod
    def for_sample(cls, task: Task, seed: int, index: int) -> SampleStreams:
        """The streams of sample ``index`` of ``task`` under ``seed``."""
        root = np.random.SeedSequence([seed, index, task.code])
        anatomy, objects, noise = (np.random.default_rng(child) for child in root.spawn(3))
        return cls(anatomy=anatomy, objects=objects, noise=noise)
