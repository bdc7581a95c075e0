"""DICOM files listed in a box manifest: the user's own data in the paper's format.

A manifest is a CSV with the header ``path,label,boxes``:

- ``path``: a DICOM file, relative to the manifest's folder (or to ``root``);
- ``label``: 0 (acceptable) or 1 (defect present);
- ``boxes``: inclusive pixel boxes ``x1 y1 x2 y2`` separated by ``;``, in the
  native frame; empty for none.

Images go through :func:`iqgate.imaging.frames_from_dataset`, the same path as the
DICOM node. Only the first frame of a multi-frame image is used, since one row carries
one label and one set of boxes: write one file per frame to use the others.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from torch.utils.data import Dataset

from iqgate.data.object_cxr import ImageItem, Shape, build_item, integer_groups
from iqgate.data.transforms import ImageTransform
from iqgate.errors import ImagingError
from iqgate.imaging import check_input_size, frames_from_dataset

MANIFEST_COLUMNS = ("path", "label", "boxes")
"""The columns of a box manifest."""


@dataclass(frozen=True)
class ManifestRecord:
    """One row of a manifest: the file path as written, its label and its boxes."""

    path: str
    label: int
    shapes: tuple[Shape, ...]


def parse_boxes(text: str) -> tuple[Shape, ...]:
    """Parse ``"x1 y1 x2 y2;..."`` into rectangles; empty (or blank) means none.

    Raises
    ------
    ValueError
        Naming the box (1-based) and what is wrong with it.

    Examples
    --------
    >>> [shape.box for shape in parse_boxes("3 4 10 12;0 0 1 1")]
    [(3, 4, 10, 12), (0, 0, 1, 1)]
    """
    shapes = []
    for number, part, values in integer_groups(text, "box", "x1 y1 x2 y2"):
        if len(values) != 4:
            raise ValueError(
                f"box {number} {part.strip()!r}: expected 4 integers x1 y1 x2 y2, got {len(values)}"
            )
        x1, y1, x2, y2 = values
        if x2 < x1 or y2 < y1:
            raise ValueError(f"box {number} {part.strip()!r}: needs x1 <= x2 and y1 <= y2")
        shapes.append(Shape.rectangle(values))
    return tuple(shapes)


def read_manifest(csv_path: str | Path) -> tuple[ManifestRecord, ...]:
    """Read a box manifest.

    Raises
    ------
    ValueError
        If the header lacks a column or a row is malformed; the message names the
        file and line.
    """
    csv_path = Path(csv_path)
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in MANIFEST_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{csv_path}: header {reader.fieldnames} lacks {missing}; "
                f"expected the columns {','.join(MANIFEST_COLUMNS)}"
            )
        records = []
        for row in reader:
            where = f"{csv_path}:{reader.line_num}"
            path = (row["path"] or "").strip()
            if not path:
                raise ValueError(f"{where}: empty path")
            label_text = (row["label"] or "").strip()
            if label_text not in ("0", "1"):
                raise ValueError(f"{where}: label must be 0 or 1, got {label_text!r}")
            try:
                shapes = parse_boxes(row["boxes"] or "")
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            records.append(ManifestRecord(path, int(label_text), shapes))
    return tuple(records)


class ManifestDataset(Dataset[ImageItem]):
    """DICOM images and boxes listed in a manifest, as :class:`ImageItem` dicts.

    Parameters
    ----------
    manifest_csv : str or Path
        The manifest (``path,label,boxes``).
    size : int
        Side of the square model input.
    root : str or Path, optional
        Folder the paths are relative to; the manifest's folder when None.
    transform : callable, optional
        Augmentation of the resized grey image [1, size, size] in [0, 1], for example
        :func:`iqgate.data.transforms.training_augmentation` on the training split.
    """

    def __init__(
        self,
        manifest_csv: str | Path,
        size: int,
        root: str | Path | None = None,
        transform: ImageTransform | None = None,
    ) -> None:
        check_input_size(size)
        manifest_csv = Path(manifest_csv)
        self.root = Path(root) if root is not None else manifest_csv.parent
        self.size = size
        self.transform = transform
        self.records = read_manifest(manifest_csv)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ImageItem:
        record = self.records[index]
        path = self.root / record.path
        try:
            frames = frames_from_dataset(pydicom.dcmread(path))
        except (ImagingError, InvalidDicomError) as error:
            raise ImagingError(f"{path}: {error}") from error
        return build_item(
            frames[0],
            self.size,
            name=record.path,
            label=record.label,
            shapes=record.shapes,
            transform=self.transform,
        )
