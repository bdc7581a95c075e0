"""Behaviour of the synthetic phantoms: reproducibility, labels, boxes, Object-CXR output."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from iqgate.data.phantoms import MAX_INTENSITY, Sample, Task, generate, write_object_cxr
from iqgate.data.phantoms.sample import label_for


def _union_of_boxes(sample: Sample) -> np.ndarray:
    inside = np.zeros(sample.image.shape, dtype=bool)
    for x1, y1, x2, y2 in sample.boxes:
        inside[y1 : y2 + 1, x1 : x2 + 1] = True
    return inside


def test_generate_is_a_lazy_sequence_that_indexes_like_a_list():
    samples = generate("cmr", 3, seed=4)
    assert len(samples) == 3
    assert [s.index for s in samples[1:]] == [1, 2]
    assert samples[-1].index == 2
    assert np.array_equal(samples[-1].image, samples[2].image)
    with pytest.raises(IndexError, match="out of range for a set of 3"):
        samples[3]


@pytest.mark.parametrize("task", ["cxr", "cmr"])
def test_same_seed_gives_identical_samples_and_another_seed_different_ones(task):
    first, again, other = (generate(task, 2, seed=s)[1] for s in (11, 11, 12))
    assert np.array_equal(first.image, again.image)
    assert first.boxes == again.boxes and first.shapes == again.shapes
    assert np.array_equal(first.object_mask, again.object_mask)
    assert first.image.shape != other.image.shape or not np.array_equal(first.image, other.image)


def test_labels_hold_the_positive_fraction_in_every_prefix():
    labels = [label_for(i, 0.3) for i in range(20)]
    assert [sum(labels[:k]) for k in (10, 20)] == [3, 6]
    assert [s.label for s in generate("cmr", 4, seed=0)] == [0, 1, 0, 1]
    assert {s.label for s in generate("cmr", 3, seed=0, positive_fraction=0.0)} == {0}


def test_radiographs_are_non_square_and_within_the_native_size_range():
    for sample in generate("cxr", 3, seed=2):
        height, width = sample.image.shape
        assert 1024 <= height <= 2048 and 1024 <= width <= 2048 and height != width
        assert sample.image.dtype == np.uint16 and int(sample.image.max()) <= MAX_INTENSITY


def test_cardiac_frames_are_about_256_pixels():
    for sample in generate("cmr", 3, seed=2):
        assert all(232 <= side <= 280 for side in sample.image.shape)
        assert sample.image.dtype == np.uint16 and sample.task is Task.CMR


def test_positive_radiographs_have_one_to_three_boxes_and_negatives_none():
    samples = generate("cxr", 6, seed=5)
    for sample in samples:
        if sample.label:
            assert 1 <= len(sample.boxes) <= 3
            assert len(sample.shapes) == len(sample.boxes)
        else:
            assert sample.boxes == [] and sample.shapes == [] and not sample.object_mask.any()


def test_positive_cardiac_frames_have_exactly_the_lvot_box():
    for sample in generate("cmr", 4, seed=5):
        assert len(sample.boxes) == sample.label
        assert all(shape.startswith("0 ") for shape in sample.shapes)


@pytest.mark.parametrize(("task", "seed"), [("cxr", 3), ("cmr", 3)])
def test_a_positive_and_its_negative_twin_share_everything_but_the_target(task, seed):
    for index in range(2):
        positive = generate(task, index + 1, seed=seed, positive_fraction=1.0)[index]
        twin = generate(task, index + 1, seed=seed, positive_fraction=0.0)[index]
        changed = positive.image != twin.image
        inside = _union_of_boxes(positive)
        assert changed[inside].any()
        # Outside the boxes only the decoy drawn in the target's place differs.
        assert (changed & ~inside).mean() < 0.01
        assert not (positive.object_mask & ~inside).any()
        for x1, y1, x2, y2 in positive.boxes:
            assert positive.object_mask[y1 : y2 + 1, x1 : x2 + 1].any()


def test_box_coordinates_agree_with_the_shape_strings():
    for sample in generate("cxr", 6, seed=8, positive_fraction=1.0):
        height, width = sample.image.shape
        for box, shape in zip(sample.boxes, sample.shapes, strict=True):
            x1, y1, x2, y2 = box
            assert 0 <= x1 <= x2 < width and 0 <= y1 <= y2 < height
            kind, *coordinates = (int(v) for v in shape.split())
            if kind in (0, 1):
                assert tuple(coordinates) == box
            else:
                xs, ys = coordinates[0::2], coordinates[1::2]
                assert len(xs) >= 3 and len(xs) == len(ys)
                assert min(xs) <= x1 and x2 <= max(xs) and min(ys) <= y1 and y2 <= max(ys)


def test_foreign_objects_are_not_the_brightest_structure_by_rule():
    on_object = [
        bool(s.object_mask.flat[int(np.argmax(s.image))])
        for s in generate("cxr", 12, seed=9, positive_fraction=1.0)
    ]
    assert sum(on_object) <= 6


def test_foreign_objects_span_the_size_range():
    widths = []
    for sample in generate("cxr", 12, seed=10, positive_fraction=1.0):
        longest = max(sample.image.shape)
        for x1, y1, x2, y2 in sample.boxes:
            extent = max(x2 - x1 + 1, y2 - y1 + 1)
            assert extent * 256 / longest >= 8
            assert extent <= 0.14 * longest + 2
            widths.append(extent * 256 / longest)
    assert min(widths) < 14 and max(widths) > 20


def test_generate_names_the_bad_argument():
    with pytest.raises(ValueError, match="task must be one of 'cxr', 'cmr'; got 'mri'"):
        generate("mri", 1, seed=0)
    with pytest.raises(ValueError, match="seed must be >= 0; got seed=-1"):
        generate("cxr", 1, seed=-1)
    with pytest.raises(TypeError, match="n must be an int; got n=2.5"):
        generate("cxr", 2.5, seed=0)
    with pytest.raises(ValueError, match=r"positive_fraction must lie in \[0, 1\]"):
        generate("cxr", 1, seed=0, positive_fraction=1.5)


def _hand_made_sample(index: int, shapes: list[str], boxes: list) -> Sample:
    image = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) % (MAX_INTENSITY + 1)
    return Sample(
        task=Task.CXR,
        seed=0,
        index=index,
        image=image,
        label=int(bool(shapes)),
        boxes=boxes,
        shapes=shapes,
        kinds=["button"] * len(shapes),
        object_mask=np.zeros(image.shape, dtype=bool),
        pixel_spacing_mm=0.2,
    )


def test_object_cxr_csv_follows_the_official_layout_for_every_shape_type(tmp_path):
    every_type = ["0 1 2 10 12", "1 20 5 30 15", "2 40 40 50 40 45 50"]
    boxes = [(1, 2, 10, 12), (20, 5, 30, 15), (40, 40, 50, 50)]
    samples = [_hand_made_sample(0, every_type, boxes), _hand_made_sample(1, [], [])]
    csv_path = write_object_cxr(samples, tmp_path, "dev")
    assert csv_path == tmp_path / "dev.csv"
    assert csv_path.read_text(encoding="utf-8").splitlines() == [
        "image_name,annotation",
        "cxr-s0-00000.jpg,0 1 2 10 12;1 20 5 30 15;2 40 40 50 40 45 50",
        "cxr-s0-00001.jpg,",
    ]


def test_object_cxr_split_holds_8_bit_grey_jpegs_of_the_generated_images(tmp_path):
    samples = generate("cxr", 2, seed=1)
    write_object_cxr(samples, tmp_path, "train")
    with open(tmp_path / "train.csv", newline="", encoding="utf-8") as table:
        rows = list(csv.DictReader(table))
    assert [row["annotation"] for row in rows] == [";".join(s.shapes) for s in samples]
    for row, sample in zip(rows, samples, strict=True):
        with Image.open(tmp_path / "train" / row["image_name"]) as jpeg:
            assert (jpeg.format, jpeg.mode) == ("JPEG", "L")
            pixels = np.asarray(jpeg, dtype=np.float64)
        expected = sample.image.astype(np.float64) * 255 / MAX_INTENSITY
        assert pixels.shape == sample.image.shape
        assert np.abs(pixels - expected).mean() < 2.0


def test_object_cxr_writes_identical_bytes_for_the_same_seed(tmp_path):
    for folder in ("a", "b"):
        write_object_cxr(generate("cxr", 2, seed=6), tmp_path / folder, "train")
    for name in ("train.csv", "train/cxr-s6-00000.jpg", "train/cxr-s6-00001.jpg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_object_cxr_rejects_a_split_that_is_a_path(tmp_path):
    with pytest.raises(ValueError, match="split must be a plain folder name"):
        write_object_cxr([], tmp_path, "../train")


def test_a_render_cache_of_another_generator_version_is_not_reused(tmp_path, monkeypatch):
    from iqgate.data import phantom_dataset
    from iqgate.data.phantom_dataset import PhantomDataset

    first = PhantomDataset("cmr", 2, seed=5, size=32).materialise(cache_dir=tmp_path)
    cache_file = tmp_path / first.cache_name()
    rendered = torch.load(cache_file, weights_only=False)
    marked = {i: (np.zeros_like(grey), *rest) for i, (grey, *rest) in rendered.items()}
    torch.save(marked, cache_file)

    same = PhantomDataset("cmr", 2, seed=5, size=32).materialise(cache_dir=tmp_path)
    assert same[0]["image"][0].std() < 1e-5, "the cache of this generator should be read"

    monkeypatch.setattr(phantom_dataset, "generator_digest", lambda: "0123456789")
    changed = PhantomDataset("cmr", 2, seed=5, size=32).materialise(cache_dir=tmp_path)
    assert changed.cache_name() != cache_file.name
    assert changed[0]["image"][0].std() > 0.1, "renders of another generator were reused"
