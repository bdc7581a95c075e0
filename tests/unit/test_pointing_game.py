"""The Pointing Game rule of shared/PAPER.md and the all-objects score, on hand-made maps."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from iqgate.study import pointing
from iqgate.study.pointing import (
    first_maximum,
    objects_hit_fraction,
    pointing_accuracy,
    pointing_game,
    top_peaks,
)


def peak_at(row: int, column: int, shape: tuple[int, int] = (60, 80)) -> np.ndarray:
    saliency = np.zeros(shape, dtype=np.float32)
    saliency[row, column] = 1.0
    return saliency


def test_ties_go_to_the_first_maximum_in_row_major_order():
    saliency = np.zeros((40, 40))
    saliency[30, 2] = saliency[5, 35] = saliency[5, 36] = 1.0
    assert first_maximum(saliency) == (5, 35)
    assert pointing_game(saliency, [(30, 0, 39, 10)], tau=3) is True
    assert pointing_game(saliency, [(0, 25, 5, 35)], tau=3) is False


def test_a_point_at_exactly_tau_is_a_miss():
    saliency = peak_at(10, 10)
    assert pointing_game(saliency, [(25, 10, 30, 12)], tau=15) is False  # 15 columns away
    assert pointing_game(saliency, [(10, 25, 12, 30)], tau=15) is False  # 15 rows away
    assert pointing_game(saliency, [(19, 22, 30, 30)], tau=15) is False  # 9-12-15 diagonal


def test_a_point_just_under_tau_is_a_hit():
    saliency = peak_at(10, 10)
    assert pointing_game(saliency, [(24, 10, 30, 12)], tau=15) is True
    assert pointing_game(saliency, [(25, 10, 30, 12)], tau=15.01) is True
    assert pointing_game(saliency, [(19, 21, 30, 30)], tau=15) is True  # d^2 = 81 + 121 < 225


def test_a_point_inside_a_box_is_a_hit():
    assert pointing_game(peak_at(20, 30), [(28, 18, 32, 22)], tau=0.5) is True


def test_any_one_of_several_boxes_counts():
    saliency = peak_at(50, 70)
    far = (0, 0, 5, 5)
    near = (60, 40, 65, 45)
    assert pointing_game(saliency, [far], tau=15) is False
    assert pointing_game(saliency, [far, near], tau=15) is True
    assert pointing_game(saliency, np.array([near, far]), tau=15) is True


def test_x_is_the_column_and_y_the_row_on_a_non_square_map():
    saliency = peak_at(5, 70, shape=(80, 100))
    assert pointing_game(saliency, [(68, 3, 72, 7)], tau=1) is True
    assert pointing_game(saliency, [(3, 68, 7, 72)], tau=1) is False  # transposed box
    with pytest.raises(ValueError, match="outside the 20 x 100 map"):
        pointing_game(peak_at(5, 70, shape=(20, 100)), [(3, 68, 7, 72)])


def test_no_boxes_means_the_image_does_not_count():
    saliency = peak_at(3, 3)
    assert pointing_game(saliency, []) is None
    assert pointing_game(saliency, np.zeros((0, 4))) is None
    assert pointing_game(saliency, torch.zeros(0, 4)) is None
    assert objects_hit_fraction(saliency, []) is None
    assert pointing_accuracy([True, None, False, None]) == 0.5
    assert pointing_accuracy([None, None]) is None


def test_torch_and_numpy_inputs_agree():
    generator = np.random.default_rng(0)
    saliency = generator.random((37, 53)).astype(np.float32)
    boxes = np.array([[3, 4, 9, 12], [40, 20, 50, 30]], dtype=np.float32)
    for tau in (2.0, 8.0, 15.0, 40.0):
        expected = pointing_game(saliency, boxes, tau)
        assert pointing_game(torch.from_numpy(saliency), torch.from_numpy(boxes), tau) is expected
        assert pointing_game(saliency, boxes.tolist(), tau) is expected
        assert pointing_game(torch.from_numpy(saliency).double(), boxes, tau) is expected


def test_the_rule_matches_a_drawn_mask_and_distance_transform():
    """Against the definition: every ground-truth pixel drawn, every distance measured."""
    generator = np.random.default_rng(1)
    for _ in range(200):
        height, width = generator.integers(5, 40, size=2)
        saliency = generator.random((height, width))
        n = generator.integers(1, 4)
        x1 = generator.integers(0, width, n)
        y1 = generator.integers(0, height, n)
        x2 = np.minimum(x1 + generator.integers(0, 6, n), width - 1)
        y2 = np.minimum(y1 + generator.integers(0, 6, n), height - 1)
        boxes = np.stack([x1, y1, x2, y2], axis=1)
        tau = float(generator.choice([1.0, 2.0, 3.0, 5.0, np.sqrt(8.0), 7.5]))
        mask = np.zeros((height, width), dtype=bool)
        for bx1, by1, bx2, by2 in boxes:
            mask[by1 : by2 + 1, bx1 : bx2 + 1] = True
        row, column = np.unravel_index(np.argmax(saliency), saliency.shape)
        rows, columns = np.nonzero(mask)
        expected = bool((((rows - row) ** 2 + (columns - column) ** 2) < tau**2).any())
        assert pointing_game(saliency, boxes, tau) is expected


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"one non-empty map \[H, W\]"):
        pointing_game(np.zeros((2, 3, 3)), [(0, 0, 1, 1)])
    with pytest.raises(ValueError, match="x1 <= x2"):
        pointing_game(np.zeros((8, 8)), [(5, 0, 1, 1)])
    with pytest.raises(ValueError, match="outside the 8 x 8 map"):
        pointing_game(np.zeros((8, 8)), [(10, 10, 12, 12)])
    with pytest.raises(ValueError, match="tau must be a positive"):
        pointing_game(np.zeros((8, 8)), [(0, 0, 1, 1)], tau=0)
    with pytest.raises(ValueError, match="NaN"):
        pointing_game(np.full((8, 8), np.nan), [(0, 0, 1, 1)])


def test_peaks_are_taken_greedily_and_kept_apart():
    saliency = np.zeros((30, 30))
    saliency[5, 5], saliency[5, 8], saliency[20, 20], saliency[25, 5] = 1.0, 0.9, 0.8, 0.7
    assert top_peaks(saliency, 3, radius=5) == [(5, 5), (20, 20), (25, 5)]
    assert top_peaks(saliency, 3, radius=1) == [(5, 5), (5, 8), (20, 20)]
    assert top_peaks(saliency, 3, radius=3) == [(5, 5), (5, 8), (20, 20)]  # 3 apart is allowed
    assert len(top_peaks(np.ones((2, 2)), 10, radius=0)) == 4


def test_all_objects_score_counts_each_object():
    saliency = np.zeros((60, 60))
    saliency[10, 10], saliency[10, 12], saliency[45, 45] = 1.0, 0.9, 0.5
    boxes = [(8, 8, 12, 12), (44, 44, 47, 47), (0, 50, 3, 55)]
    assert objects_hit_fraction(saliency, boxes, tau=3) == pytest.approx(2 / 3)
    assert objects_hit_fraction(saliency, boxes, tau=3, k=2) == pytest.approx(2 / 3)
    assert objects_hit_fraction(saliency, boxes, tau=3, k=2, nms_radius=1) == pytest.approx(1 / 3)
    assert objects_hit_fraction(saliency, boxes, tau=3, k=1) == pytest.approx(1 / 3)
    assert objects_hit_fraction(saliency, boxes[:2], tau=3) == 1.0


def test_all_objects_score_equals_the_pointing_game_for_one_object():
    generator = np.random.default_rng(2)
    for _ in range(50):
        saliency = generator.random((24, 31))
        x1, y1 = generator.integers(0, 25), generator.integers(0, 18)
        box = [(x1, y1, x1 + 5, y1 + 5)]
        assert objects_hit_fraction(saliency, box, tau=6) == float(pointing_game(saliency, box, 6))


def test_doctests_hold():
    assert doctest.testmod(pointing, raise_on_error=False).failed == 0
