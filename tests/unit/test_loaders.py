"""iqgate.data loaders: the Object-CXR grammar and folder, DICOM manifests, batching."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom import Dataset
from pydicom.uid import SecondaryCaptureImageStorage
from torch.utils.data import DataLoader

from iqgate.data.manifest import ManifestDataset
from iqgate.data.object_cxr import (
    ObjectCxrDataset,
    Shape,
    ShapeType,
    collate_samples,
    format_annotation,
    parse_annotation,
)
from iqgate.data.transforms import training_augmentation
from iqgate.errors import ImagingError
from iqgate.imaging import IMAGENET_MEAN, IMAGENET_STD, frames_from_dataset, to_model_input

SIZE = 16
EVERY_SHAPE = (
    Shape(ShapeType.RECTANGLE, (2, 3, 10, 12)),
    Shape(ShapeType.ELLIPSE, (20, 5, 30, 9)),
    Shape(ShapeType.POLYGON, (35, 20, 39, 22, 36, 28)),
)


def write_csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture()
def object_cxr_root(tmp_path: Path) -> Path:
    """A dev split of two 40 wide x 30 high grey JPEGs: every shape type, and a negative."""
    (tmp_path / "dev").mkdir()
    rng = np.random.default_rng(0)
    for name in ("positive.jpg", "negative.jpg"):
        pixels = rng.integers(0, 256, size=(30, 40), dtype=np.uint8)
        Image.fromarray(pixels, mode="L").save(tmp_path / "dev" / name, quality=95)
    write_csv(
        tmp_path / "dev.csv",
        ("image_name", "annotation"),
        [
            ("positive.jpg", format_annotation(EVERY_SHAPE)),
            ("negative.jpg", ""),
        ],
    )
    return tmp_path


def test_annotations_round_trip_for_every_shape_type() -> None:
    text = format_annotation(EVERY_SHAPE)
    assert text == "0 2 3 10 12;1 20 5 30 9;2 35 20 39 22 36 28"
    assert parse_annotation(text) == EVERY_SHAPE
    assert parse_annotation("") == ()


def test_each_shape_has_an_inclusive_bounding_box() -> None:
    assert [shape.box for shape in EVERY_SHAPE] == [
        (2, 3, 10, 12),
        (20, 5, 30, 9),
        (35, 20, 39, 28),
    ]


def test_object_cxr_items_carry_the_image_label_and_scaled_boxes(object_cxr_root: Path) -> None:
    dataset = ObjectCxrDataset(object_cxr_root, "dev", SIZE)
    assert len(dataset) == 2
    item = dataset[0]
    assert item["image"].shape == (3, SIZE, SIZE)
    assert item["label"] == 1
    assert item["name"] == "positive.jpg"
    assert item["native_size"] == (30, 40)
    assert item["shapes"] == EVERY_SHAPE
    assert item["native_boxes"].tolist() == [[2, 3, 10, 12], [20, 5, 30, 9], [35, 20, 39, 28]]
    # x by 16/40, y by 16/30: the polygon box (35, 20, 39, 28) -> x 14..15, y 10..15.
    assert item["boxes"][2].tolist() == [14.0, 10.0, 15.0, 15.0]
    with Image.open(object_cxr_root / "dev" / "positive.jpg") as image:
        expected = to_model_input(np.asarray(image)[None] / np.float32(255), SIZE)[0]
    torch.testing.assert_close(item["image"], expected)


def test_a_negative_has_label_zero_and_no_boxes(object_cxr_root: Path) -> None:
    item = ObjectCxrDataset(object_cxr_root, "dev", SIZE)[1]
    assert item["label"] == 0
    assert item["shapes"] == ()
    assert item["boxes"].shape == (0, 4)
    assert item["native_boxes"].shape == (0, 4)


@pytest.mark.parametrize(
    ("annotation", "problem"),
    [
        ("0 1 2 3 4;7 1 2 3 4", r"object 2 '7 1 2 3 4': unknown TYPE 7"),
        ("1 1 2 3", r"object 1 '1 1 2 3': ellipse needs 4 coordinates"),
        ("2 1 1 5 5", r"object 1 '2 1 1 5 5': a polygon needs x y pairs for at least 3 vertices"),
        ("0 1 2 3 4.5", r"object 1 '0 1 2 3 4.5': expected integers"),
    ],
)
def test_a_malformed_annotation_names_the_file_and_line(
    tmp_path: Path, annotation: str, problem: str
) -> None:
    write_csv(
        tmp_path / "train.csv",
        ("image_name", "annotation"),
        [("good.jpg", ""), ("bad.jpg", annotation)],
    )
    with pytest.raises(ValueError, match=rf"train\.csv:3: {problem}"):
        ObjectCxrDataset(tmp_path, "train", SIZE)


def test_a_csv_without_the_annotation_column_is_rejected(tmp_path: Path) -> None:
    write_csv(tmp_path / "dev.csv", ("image_name", "label"), [("a.jpg", "1")])
    with pytest.raises(ValueError, match=r"dev\.csv: header .* lacks \['annotation'\]"):
        ObjectCxrDataset(tmp_path, "dev", SIZE)


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2") -> None:
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.set_pixel_data(pixels, photometric, 12)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture()
def manifest_csv(tmp_path: Path) -> Path:
    """Three small DICOM files (one multi-frame MONOCHROME1) in a subfolder."""
    rng = np.random.default_rng(1)
    write_dicom(tmp_path / "images" / "a.dcm", rng.integers(0, 4096, (24, 12), dtype=np.uint16))
    write_dicom(
        tmp_path / "images" / "b.dcm",
        rng.integers(0, 4096, (24, 12), dtype=np.uint16),
        "MONOCHROME1",
    )
    write_dicom(tmp_path / "images" / "c.dcm", rng.integers(0, 4096, (3, 24, 12), dtype=np.uint16))
    path = tmp_path / "manifest.csv"
    write_csv(
        path,
        ("path", "label", "boxes"),
        [
            ("images/a.dcm", "1", "0 0 5 11;6 12 11 23"),
            ("images/b.dcm", "0", ""),
            ("images/c.dcm", "1", "2 4 3 5"),
        ],
    )
    return path


def test_manifest_items_read_dicom_through_the_imaging_path(manifest_csv: Path) -> None:
    dataset = ManifestDataset(manifest_csv, SIZE)
    assert len(dataset) == 3
    item = dataset[0]
    assert (item["label"], item["name"], item["native_size"]) == (1, "images/a.dcm", (24, 12))
    assert item["shapes"] == (Shape.rectangle((0, 0, 5, 11)), Shape.rectangle((6, 12, 11, 23)))
    assert item["boxes"].tolist() == [[0, 0, 7, 7], [8, 8, 15, 15]]
    for index in (1, 2):  # MONOCHROME1 inverted; first frame of the multi-frame file
        path = manifest_csv.parent / dataset.records[index].path
        frames = frames_from_dataset(pydicom.dcmread(path))
        torch.testing.assert_close(dataset[index]["image"], to_model_input(frames[:1], SIZE)[0])
    assert dataset[1]["label"] == 0 and dataset[1]["boxes"].shape == (0, 4)


def test_manifest_paths_can_be_relative_to_another_root(manifest_csv: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "manifest.csv"
    moved.parent.mkdir()
    moved.write_text(manifest_csv.read_text())
    assert ManifestDataset(moved, SIZE, root=tmp_path)[0]["native_size"] == (24, 12)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (("a.dcm", "yes", ""), r"label must be 0 or 1, got 'yes'"),
        (("a.dcm", "1", "1 2 3"), r"box 1 '1 2 3': expected 4 integers"),
        (("a.dcm", "1", "0 0 4 4;5 5 2 9"), r"box 2 '5 5 2 9': needs x1 <= x2"),
    ],
)
def test_a_malformed_manifest_row_names_the_file_and_line(
    tmp_path: Path, row: tuple[str, ...], problem: str
) -> None:
    write_csv(tmp_path / "manifest.csv", ("path", "label", "boxes"), [row])
    with pytest.raises(ValueError, match=rf"manifest\.csv:2: {problem}"):
        ManifestDataset(tmp_path / "manifest.csv", SIZE)


def test_a_file_that_is_not_dicom_is_an_imaging_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "note.dcm").write_text("not an image")
    write_csv(tmp_path / "manifest.csv", ("path", "label", "boxes"), [("note.dcm", "0", "")])
    with pytest.raises(ImagingError, match=r"note\.dcm: "):
        ManifestDataset(tmp_path / "manifest.csv", SIZE)[0]


def test_collate_stacks_images_and_labels_and_keeps_boxes_as_lists(manifest_csv: Path) -> None:
    loader = DataLoader(
        ManifestDataset(manifest_csv, SIZE), batch_size=3, collate_fn=collate_samples
    )
    batch = next(iter(loader))
    assert batch["image"].shape == (3, 3, SIZE, SIZE)
    assert batch["label"].tolist() == [1, 0, 1]
    assert [len(boxes) for boxes in batch["boxes"]] == [2, 0, 1]
    assert batch["name"] == ["images/a.dcm", "images/b.dcm", "images/c.dcm"]


def test_the_transform_acts_on_the_unit_grey_image_before_normalisation(
    object_cxr_root: Path,
) -> None:
    seen: list[torch.Tensor] = []

    def white(grey: torch.Tensor) -> torch.Tensor:
        seen.append(grey)
        return torch.ones_like(grey)

    image = ObjectCxrDataset(object_cxr_root, "dev", SIZE, transform=white)[0]["image"]
    assert seen[0].shape == (1, SIZE, SIZE)
    assert 0.0 <= float(seen[0].min()) and float(seen[0].max()) <= 1.0
    for channel, (mean, std) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)):
        torch.testing.assert_close(image[channel], torch.full((SIZE, SIZE), (1 - mean) / std))


def test_training_augmentation_keeps_a_grey_unit_image_grey_and_in_range() -> None:
    torch.manual_seed(0)
    grey = torch.rand(1, SIZE, SIZE)
    augmented = training_augmentation()(grey)
    assert augmented.shape == (1, SIZE, SIZE)
    assert 0.0 <= float(augmented.min()) and float(augmented.max()) <= 1.0
    assert not torch.equal(augmented, grey)
