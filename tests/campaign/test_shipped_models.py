"""The demo packages in models/ load, say what they are, and flag fresh phantoms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from iqgate.data.phantoms import generate
from iqgate.data.phantoms.dicom_encoding import display_window
from iqgate.imaging import window_to_unit
from iqgate.node.pipeline.assess import ExplainPolicy, assess_frames
from iqgate.node.pipeline.routing import ModelRegistry
from iqgate.packages import find_packages, read_card

MODELS = Path(__file__).resolve().parents[2] / "models"
TASKS = {"cxr-foreign-object": "cxr", "cmr-lvot": "cmr"}


def test_both_demo_packages_are_shipped_with_honest_cards():
    names = {path.name for path in find_packages(MODELS)}
    assert names == set(TASKS)
    committed = [  # model.onnx is derived on first start and not committed
        f
        for p in find_packages(MODELS)
        for f in p.iterdir()
        if f.is_file() and f.name != "model.onnx"
    ]
    assert sum(f.stat().st_size for f in committed) < 60 * 2**20
    for package in find_packages(MODELS):
        card = read_card(package)
        assert "NOT FOR CLINICAL USE" in card.intended_use and "synthetic" in card.description
        assert card.metrics["test"].images >= 300 and "tools/train.py" in card.training["command"]
        assert card.threshold_rule == "Youden's J on the validation set"
        test = card.metrics["test"]
        assert test.by_kind, "a phantom-trained card splits its sensitivity by object kind"
        positives_flagged = sum(k.alone_flagged for k in test.by_kind)
        assert positives_flagged <= sum(k.alone_images for k in test.by_kind) <= test.images


@pytest.mark.parametrize("name", sorted(TASKS))
def test_demo_models_reach_the_test_auc_aimed_at(name):
    assert read_card(MODELS / name).metrics["test"].auc >= 0.95  # on fresh phantoms


@pytest.mark.parametrize("name", sorted(TASKS))
def test_demo_models_separate_fresh_phantoms(name):
    registry = ModelRegistry.from_directory(MODELS, torch.device("cpu"), use_onnx=False)
    loaded = next(m for m in registry.models if m.card.name == name)
    samples = generate(TASKS[name], 16, seed=424242)
    frames = []
    for sample in samples:
        centre, width = display_window(sample.image)
        frames.append(window_to_unit(sample.image.astype(np.float32), centre, width))
    assessed = assess_frames(loaded, frames, ExplainPolicy(False), torch.device("cpu"))
    labels = np.array([s.label for s in samples])
    flagged = np.array([a.flagged for a in assessed])
    assert (flagged == (labels == 1)).mean() >= 0.75
    assert all(a.saliency is not None for a in assessed if a.flagged)
