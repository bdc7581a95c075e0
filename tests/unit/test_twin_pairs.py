"""Twin-pair training data: each phantom with and without its target, pairs kept together."""

from __future__ import annotations

import pytest
import torch

from iqgate.data.phantom_dataset import PhantomDataset
from iqgate.data.sources import PhantomSizes, open_data
from iqgate.data.twin_pairs import PairedRandomSampler, TwinPairDataset

SIZE = 96


@pytest.fixture(scope="module")
def cxr_pairs() -> TwinPairDataset:
    return TwinPairDataset("cxr", 2, seed=5, size=SIZE).materialise()


def _outside_boxes(boxes: torch.Tensor, margin: int) -> torch.Tensor:
    outside = torch.ones(SIZE, SIZE, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes.round().int().tolist():
        outside[max(0, y0 - margin) : y1 + margin + 1, max(0, x0 - margin) : x1 + margin + 1] = 0
    return outside


def test_a_pair_is_one_radiograph_without_and_with_its_foreign_objects(cxr_pairs):
    assert len(cxr_pairs) == 4
    for pair in range(2):
        negative, positive = cxr_pairs[2 * pair], cxr_pairs[2 * pair + 1]
        assert (negative["label"], positive["label"]) == (0, 1)
        assert negative["native_size"] == positive["native_size"]
        assert len(negative["boxes"]) == 0 < len(positive["boxes"])
        difference = (positive["image"] - negative["image"]).abs().amax(0)
        outside = _outside_boxes(positive["boxes"], margin=2)
        # Outside the objects only the display window moves a little (it follows the image).
        assert difference[outside].max() < 0.1
        assert difference[~outside].max() > 0.3


def test_the_pairs_are_the_generators_phantoms_of_that_seed(cxr_pairs):
    positives = PhantomDataset("cxr", 2, seed=5, size=SIZE, positive_fraction=1.0)
    assert torch.equal(cxr_pairs[3]["image"], positives[1]["image"])
    assert len(cxr_pairs[3]["boxes"]) == len(positives[1]["boxes"])


def test_another_transform_reuses_the_renders(cxr_pairs):
    flipped = cxr_pairs.with_transform(lambda grey: grey.flip(-1))
    assert flipped.positives._cache is cxr_pairs.positives._cache
    assert torch.equal(flipped[1]["image"], cxr_pairs[1]["image"].flip(-1))
    assert flipped.with_transform(None)[1]["image"].equal(cxr_pairs[1]["image"])


def test_an_index_past_the_end_is_an_index_error(cxr_pairs):
    with pytest.raises(IndexError, match="out of range"):
        cxr_pairs[4]


def test_the_sampler_keeps_each_pair_together_and_shuffles_the_pairs():
    orders = [list(PairedRandomSampler(10, torch.Generator().manual_seed(s))) for s in range(3)]
    for order in orders:
        assert sorted(order) == list(range(10))
        assert all(order[i] // 2 == order[i + 1] // 2 for i in range(0, 10, 2))
    assert len({tuple(order) for order in orders}) == 3
    odd = list(PairedRandomSampler(5, torch.Generator().manual_seed(0)))
    assert sorted(odd) == list(range(5))


def test_open_data_trains_on_twin_pairs_and_keeps_validation_and_test_independent():
    data = open_data("phantoms-cmr", 32, phantom_sizes=PhantomSizes(4, 2, 2), twin_pairs=True)
    assert isinstance(data.train, TwinPairDataset) and len(data.train) == 4
    assert [data.train[i]["label"] for i in range(4)] == [0, 1, 0, 1]
    assert [data.val[i]["label"] for i in range(2)] == [0, 1]
    assert "twin pairs" in data.description


def test_twin_pairs_need_phantoms(tmp_path):
    with pytest.raises(ValueError, match="phantoms only"):
        open_data(f"manifest:{tmp_path / 'x.csv'}", 32, twin_pairs=True)
