"""How a phantom image is stored in DICOM: SOP class, photometry, bits, rescale, syntax.

Files cycle through a table of pixel encodings (DX for presentation and for processing,
CR; MONOCHROME1 and MONOCHROME2; 12 to 16 bits stored; identity and non-identity
rescale) and, independently, through lossless transfer syntaxes. Stored values are
chosen so that the standard display pipeline gives back the sample exactly:

- MONOCHROME2: ``image = stored * slope + intercept``.
- MONOCHROME1 (intercept always 0, so the order of inversion and rescale does not
  matter): ``image = ((2**BitsStored - 1) - stored) * slope``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
)


class Photometric(str, Enum):
    """Photometric Interpretation (0028,0004) of a grey image."""

    MONOCHROME1 = "MONOCHROME1"
    """Low values are bright."""
    MONOCHROME2 = "MONOCHROME2"
    """Low values are dark."""


@dataclass(frozen=True)
class PixelEncoding:
    """The SOP class and pixel representation one file is written with."""

    sop_class: UID
    photometric: Photometric
    bits_stored: int
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0

    def __post_init__(self) -> None:
        if self.photometric is Photometric.MONOCHROME1 and self.rescale_intercept != 0.0:
            raise ValueError(
                "a MONOCHROME1 encoding needs rescale_intercept=0 so that inversion and "
                f"rescale commute; got rescale_intercept={self.rescale_intercept}"
            )

    @property
    def max_stored(self) -> int:
        """The largest value ``bits_stored`` bits can hold."""
        return 2**self.bits_stored - 1

    def stored_values(self, image: np.ndarray) -> np.ndarray:
        """The ``uint16`` stored pixel values that display as ``image``."""
        scaled = (image.astype(np.float64) - self.rescale_intercept) / self.rescale_slope
        if self.photometric is Photometric.MONOCHROME1:
            scaled = self.max_stored - scaled
        stored = np.rint(scaled)
        if stored.min() < 0 or stored.max() > self.max_stored:
            raise ValueError(
                f"image values {int(image.min())}..{int(image.max())} do not fit "
                f"{self.bits_stored} bits stored with slope {self.rescale_slope} and "
                f"intercept {self.rescale_intercept}"
            )
        return stored.astype(np.uint16)

    def modality_value(self, image_value: float) -> float:
        """The value, after the Modality LUT, that a sample grey value is stored as."""
        if self.photometric is Photometric.MONOCHROME1:
            return self.max_stored * self.rescale_slope - image_value
        return image_value


CXR_ENCODINGS: tuple[PixelEncoding, ...] = (
    PixelEncoding(DigitalXRayImageStorageForPresentation, Photometric.MONOCHROME2, 12),
    PixelEncoding(ComputedRadiographyImageStorage, Photometric.MONOCHROME1, 16, 0.0625),
    PixelEncoding(DigitalXRayImageStorageForProcessing, Photometric.MONOCHROME2, 14),
    PixelEncoding(ComputedRadiographyImageStorage, Photometric.MONOCHROME2, 15, 0.5, -1024.0),
    PixelEncoding(DigitalXRayImageStorageForPresentation, Photometric.MONOCHROME1, 16),
)
"""Radiograph encodings, cycled by sample index (five: coprime with four syntaxes)."""

CMR_ENCODINGS: tuple[PixelEncoding, ...] = (
    PixelEncoding(MRImageStorage, Photometric.MONOCHROME2, 12),
    PixelEncoding(MRImageStorage, Photometric.MONOCHROME2, 16),
    PixelEncoding(MRImageStorage, Photometric.MONOCHROME2, 14),
)
"""MR encodings, cycled by sample index; MR images carry no rescale."""

LOSSLESS_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    RLELossless,
    JPEG2000Lossless,
    JPEGLSLossless,
)
"""The transfer syntaxes files cycle through by default, in this order."""

ENCODING_PLUGINS: dict[UID, str] = {
    RLELossless: "pylibjpeg",
    JPEG2000Lossless: "pylibjpeg",
    JPEGLSLossless: "pyjpegls",
}
"""The pydicom encoding plugin used per compressed syntax, pinned so bytes never depend
on which optional plugins happen to be installed."""


def coerce_transfer_syntaxes(transfer_syntaxes: Sequence[str] | None) -> tuple[UID, ...]:
    """The syntaxes to cycle through; ``None`` means :data:`LOSSLESS_TRANSFER_SYNTAXES`."""
    if transfer_syntaxes is None:
        return LOSSLESS_TRANSFER_SYNTAXES
    chosen = tuple(UID(uid) for uid in transfer_syntaxes)
    unsupported = [uid for uid in chosen if uid not in LOSSLESS_TRANSFER_SYNTAXES]
    if not chosen or unsupported:
        allowed = ", ".join(f"{uid} ({uid.name})" for uid in LOSSLESS_TRANSFER_SYNTAXES)
        raise ValueError(
            f"transfer_syntaxes must be a non-empty choice of {allowed}; "
            f"got {list(transfer_syntaxes)!r}"
        )
    return chosen


def display_window(image: np.ndarray) -> tuple[float, float]:
    """Window centre and width (in sample grey values) from the 1st percentile to the maximum.

    The top is not clipped, so metal stays brighter than the brightest anatomy.
    """
    low = np.percentile(image, 1.0)
    high = image.max()
    width = max(float(high - low), 1.0)
    return float(low) + width / 2.0, width
