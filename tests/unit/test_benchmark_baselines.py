"""Content-free pointers, uniform chance, Wilson intervals, blank maps and the scaled tau."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iqgate.study.baselines import (
    best_fixed_point_map,
    brightest_map,
    centre_map,
    densest_edges_map,
    score_pointers,
    uniform_chance,
    within_tau,
)
from iqgate.study.evaluation import _score
from iqgate.study.metrics import wilson_interval
from iqgate.study.paper_numbers import scaled_tau
from iqgate.study.pointing import first_maximum


def test_within_tau_is_strict_and_inclusive_of_the_box():
    near = within_tau([(5, 5, 5, 5)], (11, 11), tau=2)
    assert near[5, 5] and near[5, 6] and near[6, 6]  # d^2 = 0, 1, 2 < 4
    assert not near[5, 7] and not near[7, 7]  # d^2 = 4 is not < 4


def test_uniform_chance_is_the_mean_area_within_tau_over_images_with_boxes():
    shape = (10, 10)
    one_pixel = within_tau([(0, 0, 0, 0)], shape, tau=1).mean()  # the pixel itself
    assert one_pixel == pytest.approx(0.01)
    assert uniform_chance([[(0, 0, 0, 0)], [], [(0, 0, 9, 9)]], shape, tau=1) == pytest.approx(
        (0.01 + 1.0) / 2
    )
    assert uniform_chance([[]], shape, tau=1) is None


def test_each_pointer_peaks_where_its_rule_says():
    image = np.zeros((40, 40), dtype=np.float32)
    image[30:33, 5:8] = 1.0  # a bright blob
    for column in range(20, 38, 4):  # a dense pattern of dimmer stripes
        image[5:15, column : column + 2] = 0.3
    assert first_maximum(centre_map(image.shape)) == (20, 20)
    assert first_maximum(brightest_map(image, tau=5)) == (31, 6)
    row, column = first_maximum(densest_edges_map(image, tau=5))
    assert 5 <= row <= 15 and 20 <= column <= 38


def test_best_fixed_point_hits_the_most_images():
    boxes = [[(2, 2, 3, 3)], [(3, 3, 4, 4)], [(30, 30, 31, 31)]]
    counts = best_fixed_point_map(boxes, (40, 40), tau=2)
    assert counts.max() == 2 and first_maximum(counts)[0] < 10


def test_score_pointers_skips_images_without_boxes_and_reports_hits():
    image = np.zeros((40, 40), dtype=np.float32)
    image[20, 20] = 1.0
    scores = score_pointers([image, image], [[(19, 19, 21, 21)], []], tau=3)
    assert scores["image centre"] == {"hits": 1, "images": 1, "pg": 1.0}
    assert scores["brightest pixel"]["pg"] == 1.0
    assert scores["best fixed point"]["hits"] == 1
    assert 0 < scores["uniform chance"]["pg"] < 0.05


def test_wilson_interval_matches_the_closed_form_and_stays_in_unit_range():
    low, high = wilson_interval(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="hits must lie in"):
        wilson_interval(11, 10)


def test_a_blank_map_is_a_miss_even_where_its_first_pixel_is_on_a_box():
    blank = torch.zeros(20, 20)
    outcome = _score({"row": {"smoothed": blank}}, torch.tensor([[0, 0, 3, 3]]), tau=15)
    assert outcome["row"]["smoothed"]["blank"] is True
    assert outcome["row"]["smoothed"]["hit"] is False


def test_tau_scales_with_the_input_size():
    assert scaled_tau("object-cxr", 600) == 15.0 and scaled_tau("lvot", 224) == 15.0
    assert scaled_tau("object-cxr", 256) == pytest.approx(6.4)
