"""PNG pictures for the image view: the frame as the model saw it, and its heat map.

The frame is the first frame through :func:`iqgate.imaging.frames_from_dataset` (the
node's own decoding and windowing, before the model's resize). The heat map is the
picture part of the Secondary Capture overlay the pipeline wrote (its banner rows cut
off), so the console shows exactly what PACS received; the page lays it over the frame
with an opacity the user sets.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread

from iqgate.imaging import frames_from_dataset

MAX_SIDE = 1024
"""Longest side of a picture sent to the browser (the page scales it to the frame)."""


def _png(picture: Image.Image) -> bytes:
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def frame_png(path: str | Path) -> bytes:
    """The first frame of the DICOM file at ``path``, windowed, as an 8-bit grey PNG."""
    frame = frames_from_dataset(dcmread(path))[0]
    grey = np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
    return _png(Image.fromarray(grey, mode="L"))


def overlay_png(path: str | Path, rows: int, columns: int) -> bytes:
    """The picture rows of the SC overlay at ``path`` (the source is ``rows`` x
    ``columns``; the banner above the picture is cut off), as an RGB PNG."""
    pixels = dcmread(path).pixel_array
    height, width = pixels.shape[:2]
    picture_height = min(height, round(width * rows / columns))
    return _png(Image.fromarray(np.ascontiguousarray(pixels[height - picture_height :])))
