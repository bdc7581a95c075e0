"""``tools/train.py`` trains on a data source and writes an honest model package."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from iqgate.data.phantoms.cmr import LVOT_KIND
from iqgate.data.sources import PhantomSizes, open_data
from iqgate.packages import load_package
from iqgate_testkit.train_tool import (
    TINY_PHANTOM_SPLITS,
    TINY_SCHEDULE,
    TRAIN_TOOL,
    package_args,
    run_train_tool,
)


def test_phantom_splits_use_distinct_seeds_and_input_size_boxes():
    data = open_data("phantoms-cxr", 64, seed=5, phantom_sizes=PhantomSizes(4, 2, 2))
    assert (len(data.train), len(data.val), len(data.test)) == (4, 2, 2)
    assert not torch.equal(data.val[0]["image"], data.test[0]["image"])
    positive = data.train[1]
    assert positive["label"] == 1 and positive["boxes"].shape[1] == 4
    assert float(positive["boxes"].max()) <= 63


@pytest.mark.parametrize("twin_pairs", [False, True], ids=["independent", "twin-pairs"])
def test_train_tool_writes_a_package_with_threshold_and_metrics(tmp_path, twin_pairs):
    out = tmp_path / "tiny-cmr"
    run = run_train_tool(
        "--preset",
        "demo-cmr",
        "--data",
        "phantoms-cmr",
        *package_args("tiny-cmr", tmp_path),
        *TINY_PHANTOM_SPLITS,
        *TINY_SCHEDULE,
        "--batch-size",
        "8",
        "--half",
        *(["--twin-pairs"] if twin_pairs else []),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    model, card = load_package(out)
    assert card.name == "tiny-cmr" and card.architecture == "resnet18" and card.input_size == 64
    assert card.task == "cmr-lvot" and card.routing.modalities == ["MR"]
    assert "NOT FOR CLINICAL USE" in card.intended_use and card.weights_dtype == "float16"
    assert card.threshold_rule == "Youden's J on the validation set"
    assert set(card.metrics) == {"validation", "test"} and card.metrics["test"].images == 8
    assert card.training["best_epoch"] == 1 and "tools/train.py" in card.training["command"]
    by_kind = card.metrics["test"].by_kind
    assert by_kind is not None and [k.kind for k in by_kind] == [LVOT_KIND]
    assert 0 < by_kind[0].images == by_kind[0].alone_images <= 8
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)
    assert card.training["config"]["twin_batches"] is twin_pairs
    assert ("twin pairs" in card.training["data"]) is twin_pairs


def test_train_tool_help_documents_the_presets():
    run = subprocess.run(
        [sys.executable, str(TRAIN_TOOL), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for preset in ("object-cxr", "lvot", "demo-cxr", "demo-cmr"):
        assert preset in run.stdout
