"""A pydicom decoder plugin for JPEG Extended (Process 2 and 4) at 8 and 12 bits.

pydicom's own plugins for ``1.2.840.10008.1.2.4.51`` (Pillow, GDCM) decode 8-bit
samples only, and the one that reads 12-bit samples (pylibjpeg-libjpeg) is GPL. This
plugin decodes both precisions with libjpeg-turbo 3 through imagecodecs (BSD-3-Clause).
:func:`register` adds it to pydicom's JPEG Extended decoder; :mod:`iqgate.imaging`
calls it on import, so every process that decodes pixel data has it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydicom import uid
from pydicom.pixels.decoders import JPEGExtended12BitDecoder

if TYPE_CHECKING:
    from pydicom.pixels.decoders.base import DecodeRunner

PLUGIN_LABEL = "iqgate-libjpeg-turbo"
DECODER_DEPENDENCIES = {uid.JPEGExtended12Bit: ("imagecodecs>=2023.9",)}


def is_available(transfer_syntax: str) -> bool:
    """Whether imagecodecs with a libjpeg-turbo JPEG codec is installed (pydicom's hook)."""
    if transfer_syntax not in DECODER_DEPENDENCIES:
        return False
    try:
        import imagecodecs
    except ImportError:
        return False
    return bool(imagecodecs.JPEG8.available)


def decode_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """One JPEG Extended frame as the little-endian sample bytes pydicom expects.

    Greyscale only (the node's models read one sample per pixel); a colour frame raises
    ``ValueError`` naming its Samples per Pixel, and pydicom tries its next plugin.
    """
    import imagecodecs

    if runner.samples_per_pixel != 1:
        raise ValueError(
            f"the libjpeg-turbo plugin decodes greyscale JPEG Extended only; "
            f"Samples per Pixel is {runner.samples_per_pixel}"
        )
    pixels = np.asarray(imagecodecs.jpeg8_decode(src))
    dtype = np.uint8 if runner.bits_allocated == 8 else np.dtype("<u2")
    return pixels.astype(dtype, copy=False).tobytes()


def register() -> None:
    """Add the plugin to pydicom's JPEG Extended decoder; later calls do nothing."""
    if not is_available(uid.JPEGExtended12Bit):
        raise ImportError(
            "12-bit JPEG Extended needs imagecodecs with libjpeg-turbo 3: pip install imagecodecs"
        )
    if PLUGIN_LABEL not in JPEGExtended12BitDecoder.available_plugins:
        JPEGExtended12BitDecoder.add_plugin(PLUGIN_LABEL, (__name__, "decode_frame"))
