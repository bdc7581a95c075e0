"""The Object-CXR data set: annotation grammar, image items and the loader.

Layout (PAPER.md, "Object-CXR data format"): ``<root>/<split>.csv`` with the header
``image_name,annotation`` and the grey JPEGs in ``<root>/<split>/``. An annotation is
empty for a negative image; otherwise objects separated by ``;``, each ``TYPE c1 c2 ...``
separated by spaces:

- ``0 x1 y1 x2 y2``: rectangle,
- ``1 x1 y1 x2 y2``: ellipse given by its bounding box,
- ``2 x1 y1 ... xn yn``: polygon.

Coordinates are integer pixels, origin top-left, x right, y down. The pointing game
uses each object's bounding box (PAPER.md, Evaluation).

The image item (:class:`ImageItem`) and :func:`collate_samples` defined here are shared
by every loader of the data package.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from iqgate.data.transforms import ImageTransform, prepare_image
from iqgate.imaging import check_input_size, grey_to_unit, scale_boxes

CSV_COLUMNS = ("image_name", "annotation")
"""The columns of ``train.csv`` and ``dev.csv``."""


class ShapeType(IntEnum):
    """The TYPE code of an Object-CXR annotation object."""

    RECTANGLE = 0
    ELLIPSE = 1
    POLYGON = 2


@dataclass(frozen=True)
class Shape:
    """One annotated object: its type and integer pixel coordinates.

    Parameters
    ----------
    kind : ShapeType
        Rectangle, ellipse (given by its box) or polygon.
    coords : tuple of int
        ``(x1, y1, x2, y2)`` for a rectangle or ellipse; ``(x1, y1, ..., xn, yn)``
        with n >= 3 for a polygon.
    """

    kind: ShapeType
    coords: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ShapeType(self.kind))
        count = len(self.coords)
        if self.kind is ShapeType.POLYGON:
            if count < 6 or count % 2:
                raise ValueError(
                    f"a polygon needs x y pairs for at least 3 vertices, got {count} coordinates"
                )
        elif count != 4:
            raise ValueError(
                f"{self.kind.name.lower()} needs 4 coordinates x1 y1 x2 y2, got {count}"
            )

    @classmethod
    def rectangle(cls, box: Sequence[int]) -> Shape:
        """A rectangle from an inclusive box ``(x1, y1, x2, y2)``."""
        return cls(ShapeType.RECTANGLE, tuple(int(value) for value in box))

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Inclusive bounding box ``(x1, y1, x2, y2)``: min and max of the x and y values."""
        xs, ys = self.coords[0::2], self.coords[1::2]
        return min(xs), min(ys), max(xs), max(ys)


def integer_groups(text: str, item: str, layout: str) -> list[tuple[int, str, list[int]]]:
    """Split ``"a b c;d e f"`` into ``(number, part, integers)``, skipping empty parts.

    A part holding anything but integers is a ``ValueError`` naming the 1-based
    ``item`` number and the expected ``layout``.
    """
    groups = []
    for number, part in enumerate(text.split(";"), start=1):
        tokens = part.split()
        if not tokens:
            continue
        try:
            groups.append((number, part.strip(), [int(token) for token in tokens]))
        except ValueError:
            raise ValueError(
                f"{item} {number} {part.strip()!r}: expected integers {layout}"
            ) from None
    return groups


def parse_annotation(text: str) -> tuple[Shape, ...]:
    """Parse an Object-CXR annotation string; empty (or blank) means no object.

    Empty objects (a trailing ``;``) are skipped.

    Parameters
    ----------
    text : str
        For example ``"0 10 20 30 40;2 5 5 9 5 7 8"``.

    Returns
    -------
    tuple of Shape
        The objects in the order given.

    Raises
    ------
    ValueError
        Naming the object (1-based) and what is wrong with it.

    Examples
    --------
    >>> [shape.box for shape in parse_annotation("0 10 20 30 40;2 5 5 9 5 7 8")]
    [(10, 20, 30, 40), (5, 5, 9, 8)]
    """
    shapes = []
    for number, part, values in integer_groups(text, "object", "'TYPE c1 c2 ...'"):
        if values[0] not in set(ShapeType):
            raise ValueError(
                f"object {number} {part.strip()!r}: unknown TYPE {values[0]} "
                "(0 rectangle, 1 ellipse, 2 polygon)"
            )
        try:
            shapes.append(Shape(ShapeType(values[0]), tuple(values[1:])))
        except ValueError as error:
            raise ValueError(f"object {number} {part.strip()!r}: {error}") from None
    return tuple(shapes)


def format_annotation(shapes: Sequence[Shape]) -> str:
    """Write shapes in the Object-CXR grammar (the inverse of :func:`parse_annotation`).

    Examples
    --------
    >>> format_annotation([Shape(ShapeType.ELLIPSE, (1, 2, 3, 4))])
    '1 1 2 3 4'
    """
    return ";".join(
        " ".join(str(value) for value in (int(shape.kind), *shape.coords)) for shape in shapes
    )


@dataclass(frozen=True)
class ObjectCxrRecord:
    """One row of an Object-CXR CSV: the image file name and its objects."""

    name: str
    shapes: tuple[Shape, ...]

    @property
    def label(self) -> int:
        """1 when the image has at least one foreign object, else 0."""
        return int(bool(self.shapes))


def read_annotation_csv(csv_path: str | Path) -> tuple[ObjectCxrRecord, ...]:
    """Read ``train.csv`` or ``dev.csv``.

    Raises
    ------
    ValueError
        If the header lacks ``image_name`` or ``annotation``, or a row is malformed;
        the message names the file and line.
    """
    csv_path = Path(csv_path)
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in CSV_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{csv_path}: header {reader.fieldnames} lacks {missing}; "
                f"expected the columns {','.join(CSV_COLUMNS)}"
            )
        records = []
        for row in reader:
            name = (row["image_name"] or "").strip()
            if not name:
                raise ValueError(f"{csv_path}:{reader.line_num}: empty image_name")
            try:
                shapes = parse_annotation(row["annotation"] or "")
            except ValueError as error:
                raise ValueError(f"{csv_path}:{reader.line_num}: {error}") from None
            records.append(ObjectCxrRecord(name, shapes))
    return tuple(records)


class ImageItem(TypedDict):
    """One loaded image, as every loader of the data package returns it.

    Attributes
    ----------
    image : torch.Tensor
        float32 [3, size, size], normalised as :func:`iqgate.imaging.to_model_input` does.
    label : int
        0 (acceptable) or 1 (defect present).
    boxes : torch.Tensor
        float32 [N, 4] inclusive boxes at the input resolution (for the pointing game).
    native_boxes : torch.Tensor
        float32 [N, 4] inclusive boxes in the native image.
    shapes : tuple of Shape
        The annotated objects, native coordinates.
    name : str
        The image's name or path as its CSV gives it.
    native_size : tuple of int
        (H, W) of the native image.
    """

    image: torch.Tensor
    label: int
    boxes: torch.Tensor
    native_boxes: torch.Tensor
    shapes: tuple[Shape, ...]
    name: str
    native_size: tuple[int, int]


class ImageBatch(TypedDict):
    """Items batched by :func:`collate_samples`; boxes vary in number, so stay lists."""

    image: torch.Tensor
    label: torch.Tensor
    boxes: list[torch.Tensor]
    native_boxes: list[torch.Tensor]
    shapes: list[tuple[Shape, ...]]
    name: list[str]
    native_size: list[tuple[int, int]]


def build_item(
    unit: np.ndarray,
    size: int,
    *,
    name: str,
    label: int,
    shapes: tuple[Shape, ...],
    transform: ImageTransform | None = None,
) -> ImageItem:
    """Make the item of one grey image [H, W] in [0, 1] and its objects."""
    height, width = unit.shape
    native_boxes = torch.tensor([shape.box for shape in shapes], dtype=torch.float32)
    native_boxes = native_boxes.reshape(-1, 4)
    return ImageItem(
        image=prepare_image(unit, size, transform),
        label=label,
        boxes=scale_boxes(native_boxes, (height, width), size),
        native_boxes=native_boxes,
        shapes=shapes,
        name=name,
        native_size=(height, width),
    )


def collate_samples(items: Sequence[ImageItem]) -> ImageBatch:
    """Batch items for a ``DataLoader`` (``collate_fn=collate_samples``).

    Images are stacked to [B, 3, size, size] and labels to int64 [B]; boxes, shapes,
    names and native sizes stay lists, one entry per image.
    """
    if not items:
        raise ValueError("collate_samples needs at least one item")
    return ImageBatch(
        image=torch.stack([item["image"] for item in items]),
        label=torch.tensor([item["label"] for item in items], dtype=torch.int64),
        boxes=[item["boxes"] for item in items],
        native_boxes=[item["native_boxes"] for item in items],
        shapes=[item["shapes"] for item in items],
        name=[item["name"] for item in items],
        native_size=[item["native_size"] for item in items],
    )


def read_grey_image(path: str | Path) -> np.ndarray:
    """Read a grey JPEG or PNG as uint8 (8-bit) or uint16 (16-bit) [H, W].

    Colour files are converted to grey (ITU-R 601-2 luma, PIL's ``"L"`` mode).
    """
    with Image.open(path) as image:
        if image.mode.startswith("I;16"):
            return np.asarray(image).astype(np.uint16)
        if image.mode == "I":
            pixels = np.asarray(image)
            if pixels.min() >= 0 and pixels.max() <= np.iinfo(np.uint16).max:
                return pixels.astype(np.uint16)
            raise ValueError(f"{path}: 32-bit grey values outside 0..65535 are not supported")
        return np.asarray(image.convert("L") if image.mode != "L" else image)


class ObjectCxrDataset(Dataset[ImageItem]):
    """Object-CXR images and their objects, as :class:`ImageItem` dicts.

    Parameters
    ----------
    root : str or Path
        Folder holding ``<split>.csv`` and ``<split>/``.
    split : str
        ``"train"`` or ``"dev"`` (any name with that layout works).
    size : int
        Side of the square model input (the paper: 600).
    transform : callable, optional
        Augmentation of the resized grey image [1, size, size] in [0, 1], for example
        :func:`iqgate.data.transforms.training_augmentation` on the training split.
    """

    def __init__(
        self, root: str | Path, split: str, size: int, transform: ImageTransform | None = None
    ) -> None:
        check_input_size(size)
        self.root = Path(root)
        self.split = split
        self.size = size
        self.transform = transform
        self.records = read_annotation_csv(self.root / f"{split}.csv")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ImageItem:
        record = self.records[index]
        pixels = read_grey_image(self.root / self.split / record.name)
        return build_item(
            grey_to_unit(pixels),
            self.size,
            name=record.name,
            label=record.label,
            shapes=record.shapes,
            transform=self.transform,
        )
