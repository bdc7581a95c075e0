"""``write_object_cxr``: phantom samples in the layout of the Object-CXR data set.

PAPER.md, "Object-CXR data format": a folder ``<split>/`` of 8-bit grey JPEGs and a
``<split>.csv`` with the header ``image_name,annotation``; the annotation is empty for
negatives, otherwise one ``TYPE c1 c2 ...`` per object, joined by ``;``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from iqgate.data.phantoms.sample import MAX_INTENSITY, Sample

CSV_HEADER = ("image_name", "annotation")
JPEG_QUALITY = 95


def write_object_cxr(samples: Iterable[Sample], out_dir: str | Path, split: str) -> Path:
    """Write ``samples`` as the ``split`` of an Object-CXR-style data set.

    Parameters
    ----------
    samples : iterable of Sample
        From :func:`iqgate.data.phantoms.generate` (either task).
    out_dir : str or Path
        Root of the data set; ``<split>/`` and ``<split>.csv`` are created in it.
    split : str
        Split name, e.g. ``"train"`` or ``"dev"``; a plain folder name.

    Returns
    -------
    Path
        The CSV file, which lists the images of this call and replaces an earlier one.
    """
    if not split or split in {".", ".."} or "/" in split or "\\" in split:
        raise ValueError(f"split must be a plain folder name such as 'train'; got {split!r}")
    root = Path(out_dir)
    image_dir = root / split
    image_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for sample in samples:
        image_name = f"{sample.name}.jpg"
        Image.fromarray(to_8_bit(sample.image)).save(
            image_dir / image_name, format="JPEG", quality=JPEG_QUALITY
        )
        rows.append((image_name, ";".join(sample.shapes)))
    csv_path = root / f"{split}.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as table:
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)
    return csv_path


def to_8_bit(image: np.ndarray) -> np.ndarray:
    """A 12-bit phantom image rescaled to ``uint8`` (0..4095 to 0..255, rounded)."""
    return np.rint(image.astype(np.float32) * (255.0 / MAX_INTENSITY)).astype(np.uint8)
